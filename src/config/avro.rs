//! `output.encoding` and the `registry.*` keys: Avro through a Schema
//! Registry, for the `debezium` format.

use super::*;
use crate::registry::{SubjectStrategy, Url};

/// `output.encoding=avro` and its registry, validated.
#[derive(Clone)]
pub struct AvroKeys {
    pub urls: Vec<Url>,
    pub basic_auth: Option<String>,
    pub strategy: SubjectStrategy,
    pub timeout: Duration,
    /// For `https://` URLs: the CAs of `registry.ssl.ca.location`, else
    /// the system's.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl AvroKeys {
    /// What the registry client is told.
    pub fn registry(&self) -> crate::registry::Settings {
        crate::registry::Settings {
            urls: self.urls.clone(),
            basic_auth: self.basic_auth.clone(),
            timeout: self.timeout,
            tls: self.tls.clone(),
        }
    }
}

/// A TLS client configuration for an `https://` registry.
fn registry_tls(ca: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    let missing = crate::tls::missing_cpu_features();
    if !missing.is_empty() {
        return Err(crate::tls::cpu_refusal(
            &missing,
            "reach the registry over http://",
        ));
    }
    let (roots, _) = crate::tls::trusted_roots(ca, "registry.ssl.ca.location")?;
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up failed: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

impl std::fmt::Debug for AvroKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroKeys")
            .field("urls", &self.urls)
            .field("basic_auth", &self.basic_auth.as_ref().map(|_| "(set)"))
            .field("strategy", &self.strategy)
            .finish()
    }
}

pub(super) fn avro_keys(v: &Values, format: Format) -> Result<Option<AvroKeys>, ConfigError> {
    let avro = choice(
        "output.encoding",
        &v.get("output.encoding"),
        &[("json", false), ("avro", true)],
        "json or avro",
    )?;
    if !avro {
        return Ok(None);
    }
    if format != Format::Debezium {
        return Err(ConfigError::BadValue {
            key: "output.encoding".into(),
            value: "avro".into(),
            expected: "json with this output.format: Avro is written in Debezium's shape (output.format=debezium)".into(),
        });
    }
    let list = v.get("registry.url");
    if list.is_empty() {
        return Err(ConfigError::BadValue {
            key: "registry.url".into(),
            value: list,
            expected: "the schema registry's URL (http://host:port, several comma-separated) with output.encoding=avro".into(),
        });
    }
    let urls = list
        .split(',')
        .map(|u| {
            Url::parse(u.trim()).map_err(|e| ConfigError::BadValue {
                key: "registry.url".into(),
                value: u.trim().to_string(),
                expected: e,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let auth = secret(v.0, "registry.basic_auth_user_info")?;
    if !auth.is_empty() && !auth.contains(':') {
        return Err(ConfigError::BadValue {
            key: "registry.basic_auth_user_info".into(),
            value: "(hidden)".into(),
            expected: "USER:PASSWORD".into(),
        });
    }
    let ca = v.path("registry.ssl.ca.location");
    let tls = if urls.iter().any(|u| u.https) {
        Some(std::sync::Arc::new(registry_tls(ca.as_deref()).map_err(
            |e| {
                ConfigError::BadValue {
                    key: "registry.ssl.ca.location".into(),
                    value: ca
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    expected: e,
                }
            },
        )?))
    } else {
        None
    };
    Ok(Some(AvroKeys {
        tls,
        urls,
        basic_auth: (!auth.is_empty()).then_some(auth),
        strategy: choice(
            "registry.subject_name_strategy",
            &v.get("registry.subject_name_strategy"),
            &[
                ("topic", SubjectStrategy::Topic),
                ("record", SubjectStrategy::Record),
                ("topic_record", SubjectStrategy::TopicRecord),
            ],
            "topic, record or topic_record",
        )?,
        timeout: v.ms_at_least("registry.timeout_ms", 100)?,
    }))
}

impl Config {
    /// What the Avro output is told, with `output.encoding=avro`.
    pub(super) fn avro_out(&self) -> Option<crate::pipeline::avro_out::Settings> {
        self.avro
            .as_ref()
            .map(|a| crate::pipeline::avro_out::Settings {
                registry: a.registry(),
                strategy: a.strategy,
                server_name: self.pipeline_name.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::load_layers(&[("f".into(), text.into())], vec![], &[])
    }

    #[test]
    fn avro_needs_the_debezium_shape_and_a_registry() {
        let e = load("output.encoding = avro\nregistry.url = http://r:8081\n").unwrap_err();
        assert!(e.to_string().contains("output.format=debezium"), "{e}");
        let e = load("output.format = debezium\noutput.encoding = avro\n").unwrap_err();
        assert!(e.to_string().contains("registry.url"), "{e}");
        let c = load("output.format = debezium\noutput.encoding = avro\nregistry.url = http://a:8081, http://b:8082/sr\nregistry.basic_auth_user_info = u:hunter2\n").unwrap();
        let a = c.avro.as_ref().unwrap();
        assert_eq!(a.urls.len(), 2);
        assert_eq!(a.strategy, SubjectStrategy::Topic);
        assert!(!format!("{c:?}").contains("hunter2"));
        let e = load("output.format = debezium\noutput.encoding = avro\nregistry.url = http://a\nregistry.basic_auth_user_info = hunter2\n").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(load("output.encoding = json\n").unwrap().avro.is_none());
    }
}
