//! The `SC_*` environment variables, which win over the config file.

use super::remote_write::BasicAuth;
use super::{duration, Config, Millis, Secret};
use std::path::PathBuf;

/// One `SC_*` variable and how it changes the config.
pub(super) struct EnvOverride {
    pub(super) name: &'static str,
    pub(super) apply: fn(&mut Config, &str) -> Result<(), String>,
}

/// Non-empty text, or the error every text override gives.
fn text(value: &str) -> Result<String, String> {
    match value.trim() {
        "" => Err("expected a non-empty value".to_owned()),
        v => Ok(v.to_owned()),
    }
}

fn enum_value<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_yaml::from_str(value.trim()).map_err(|e| e.to_string())
}

/// Every `SC_*` variable, applied in this order.
pub(super) const ENV_OVERRIDES: &[EnvOverride] = &[
    EnvOverride {
        name: "SC_COLLECTION_INTERVAL",
        apply: |c, v| {
            c.collection_interval = Millis(duration::parse(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_INGESTOR_ENDPOINT",
        // An empty value switches remote write off (stdout), as in the file.
        apply: |c, v| {
            c.ingestor_endpoint = Some(v.trim().to_owned()).filter(|v| !v.is_empty());
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_VM_ID",
        apply: |c, v| {
            c.vm_id = text(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_JOB",
        apply: |c, v| {
            c.job = text(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_INSTANCE",
        apply: |c, v| {
            c.instance = Some(text(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_LOG_LEVEL",
        apply: |c, v| {
            c.log_level = enum_value(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_LOG_FORMAT",
        apply: |c, v| {
            c.log_format = enum_value(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_LABELS",
        apply: |c, v| {
            for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (name, value) = pair.split_once('=').ok_or_else(|| {
                    format!("expected name=value pairs separated by commas, got {pair:?}")
                })?;
                c.labels
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_BASIC_AUTH_USERNAME",
        apply: |c, v| {
            let username = text(v)?;
            match &mut c.remote_write.basic_auth {
                Some(auth) => auth.username = username,
                None => {
                    c.remote_write.basic_auth = Some(BasicAuth {
                        username,
                        password_file: None,
                        password: Secret::default(),
                    })
                }
            }
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_BASIC_AUTH_PASSWORD",
        apply: |c, v| {
            let password = Secret::from_text(v)?;
            match &mut c.remote_write.basic_auth {
                Some(auth) => auth.password = password,
                None => {
                    return Err(
                        "remote_write.basic_auth.username is not set (in the config or \
                                SC_BASIC_AUTH_USERNAME); expected a user name with the password"
                            .to_owned(),
                    )
                }
            }
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_BEARER_TOKEN",
        apply: |c, v| {
            c.remote_write.bearer_token = Secret::from_text(v)?;
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_TLS_CA_FILE",
        apply: |c, v| {
            c.remote_write.tls.ca_file = Some(PathBuf::from(text(v)?));
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_TLS_CERT_FILE",
        apply: |c, v| {
            c.remote_write.tls.cert_file = Some(PathBuf::from(text(v)?));
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_TLS_KEY_FILE",
        apply: |c, v| {
            c.remote_write.tls.key_file = Some(PathBuf::from(text(v)?));
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_PROCFS",
        apply: |c, v| {
            c.paths.procfs = PathBuf::from(text(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_SYSFS",
        apply: |c, v| {
            c.paths.sysfs = PathBuf::from(text(v)?);
            Ok(())
        },
    },
    EnvOverride {
        name: "SC_ROOTFS",
        apply: |c, v| {
            c.paths.rootfs = PathBuf::from(text(v)?);
            Ok(())
        },
    },
];
