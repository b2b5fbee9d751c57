//! Where values come from: the file, the `B2K_*` environment, and (for a
//! fleet's pipeline) its definition, in that order of precedence.

use super::*;

impl Config {
    /// Reads `path` (if any), then the `B2K_*` variables of `env`, then
    /// validates every value.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut layers = Vec::new();
        if let Some(path) = path {
            let shown = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Missing {
                path: shown.clone(),
                detail: e.to_string(),
            })?;
            layers.push((shown, text));
        }
        Self::load_layers(&layers, env, &[])
    }

    /// The keys of each `(name, text)` layer in turn, a later layer's value
    /// winning, then the `B2K_*` variables of `env`, then the layers of
    /// `over` (a fleet's pipeline: the host's file and environment, then
    /// its definition); then validates every value.
    pub fn load_layers(
        layers: &[(String, String)],
        env: impl IntoIterator<Item = (String, String)>,
        over: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, String> = KEYS
            .iter()
            .map(|k| (k.name, k.default.to_string()))
            .collect();
        let mut warnings = Vec::new();
        for (shown, text) in layers {
            let mut seen: BTreeMap<&'static str, usize> = BTreeMap::new();
            for (key, value, line) in parse_properties(text, shown)? {
                let k = known(&key, &format!("{shown}:{line}"))?;
                if let Some(first) = seen.insert(k, line) {
                    warnings.push(format!(
                        "{shown}:{line}: {k} is set again (first at line {first}); the later value wins"
                    ));
                }
                values.insert(k, value);
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("B2K_") else {
                continue;
            };
            // The key whose variable name this is (`filter.columns.mask` is
            // B2K_FILTER_COLUMNS_MASK); an unknown one is reported as the
            // key it most likely means.
            let key = KEYS
                .iter()
                .find(|k| env_name(k.name) == name)
                .map(|k| k.name.to_string())
                .unwrap_or_else(|| rest.to_ascii_lowercase().replacen('_', ".", 1));
            let k = known(&key, &format!("environment variable {name}"))?;
            values.insert(k, value);
        }
        for (shown, text) in over {
            for (key, value, line) in parse_properties(text, shown)? {
                values.insert(known(&key, &format!("{shown}:{line}"))?, value);
            }
        }
        let mut cfg = Self::from_values(&values)?;
        cfg.warnings = warnings;
        Ok(cfg)
    }
}
