//! `data-routing-policy`: which provider targets may receive a request, by their declared
//! data handling (`zdr`, `data_collection`, `data_policy`, `region`). The policy itself
//! neither rewrites nor blocks content; the router reads its settings and routes only to
//! targets that satisfy them (and blocks with this policy's name when none does).

use serde::{Deserialize, Serialize};

use super::{Mode, Policy};
use crate::config::schema::{DataCollection, ProviderKind};
use crate::config::{Config, Target};

pub const NAME: &str = "data-routing-policy";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataRoutingSettings {
    /// `observe`: record which targets would have been excluded, exclude none.
    #[serde(default)]
    pub mode: Mode,
    /// Only targets with `zdr: true` (or `data_policy.zdr: true`).
    #[serde(default)]
    pub require_zdr: bool,
    /// Only targets whose `region` is one of these (case-insensitive). A target without
    /// a `region` is excluded: its data residency is unknown.
    #[serde(default)]
    pub allowed_regions: Vec<String>,
    /// Only targets that declare `data_collection: deny` (zero data retention implies it).
    #[serde(default)]
    pub deny_data_collection: bool,
    /// Only targets whose `data_policy.allow_training` is `false` (or that are ZDR).
    #[serde(default)]
    pub deny_training: bool,
}

impl DataRoutingSettings {
    /// The settings when the policy is in the configuration's chain.
    pub fn of(config: &Config) -> Result<Option<DataRoutingSettings>, String> {
        if !config.chain.iter().any(|n| n == NAME) {
            return Ok(None);
        }
        match config.policy_blocks.get(NAME) {
            Some(block) => super::parse_block(NAME, block).map(Some),
            None => Ok(Some(DataRoutingSettings::default())),
        }
    }

    /// Why `target` may not receive requests under these settings (empty: it may).
    /// The local `mock` provider sends nothing anywhere and satisfies every rule.
    pub fn violations(&self, target: &Target) -> Vec<String> {
        let mut out = Vec::new();
        if target.kind == ProviderKind::Mock {
            return out;
        }
        let dp = target.spec.data_policy.as_ref();
        if self.require_zdr && !target.zdr {
            out.push("not zero data retention (`zdr`)".to_string());
        }
        if self.deny_data_collection {
            let declared = target
                .data_collection
                .or_else(|| dp.and_then(|d| d.data_collection));
            if declared != Some(DataCollection::Deny) && !target.zdr {
                out.push("does not declare `data_collection: deny`".to_string());
            }
        }
        if self.deny_training && !target.zdr && dp.and_then(|d| d.allow_training) != Some(false) {
            out.push("does not declare `data_policy.allow_training: false`".to_string());
        }
        if !self.allowed_regions.is_empty() {
            match &target.region {
                Some(r)
                    if self
                        .allowed_regions
                        .iter()
                        .any(|a| a.eq_ignore_ascii_case(r)) => {}
                Some(r) => out.push(format!("region `{r}` is not allowed")),
                None => out.push("declares no `region`".to_string()),
            }
        }
        out
    }
}

pub struct DataRoutingPolicy {
    settings: DataRoutingSettings,
}

impl DataRoutingPolicy {
    pub fn from_block(block: &serde_yaml::Value) -> Result<DataRoutingPolicy, String> {
        Ok(DataRoutingPolicy {
            settings: super::parse_block(NAME, block)?,
        })
    }
}

impl Policy for DataRoutingPolicy {
    fn name(&self) -> &'static str {
        NAME
    }

    fn mode(&self) -> Mode {
        self.settings.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_str;

    #[test]
    fn targets_are_checked_against_every_rule() {
        let yaml = "pack: {name: t}
providers:
  targets:
    - {id: zdr-eu, provider: openai, model: m, base_url: 'http://h/v1', zdr: true, region: EU}
    - {id: plain-us, provider: openai, model: m, base_url: 'http://h/v1', region: us}
    - {id: nocollect, provider: openai, model: m, base_url: 'http://h/v1', data_collection: deny,
       data_policy: {allow_training: false}}
    - {id: local, provider: mock, model: m}
policies:
  chain: [data-routing-policy]
policy:
  data-routing-policy: {require_zdr: true, allowed_regions: [eu]}
";
        let c = load_str(yaml, std::path::Path::new("t.yaml")).unwrap().0;
        let s = DataRoutingSettings::of(&c).unwrap().unwrap();
        assert!(s.violations(&c.targets[0]).is_empty());
        assert_eq!(s.violations(&c.targets[1]).len(), 2);
        assert_eq!(
            s.violations(&c.targets[2]),
            ["not zero data retention (`zdr`)", "declares no `region`"]
        );
        assert!(s.violations(&c.targets[3]).is_empty());
        let s = DataRoutingSettings {
            deny_data_collection: true,
            deny_training: true,
            ..DataRoutingSettings::default()
        };
        assert!(s.violations(&c.targets[0]).is_empty());
        assert_eq!(s.violations(&c.targets[1]).len(), 2);
        assert!(s.violations(&c.targets[2]).is_empty());
    }

    #[test]
    fn absent_from_the_chain_means_no_restriction() {
        let yaml = "pack: {name: t}\nproviders: {targets: [{id: m, provider: mock, model: m}]}\npolicy:\n  data-routing-policy: {require_zdr: true}\n";
        let c = load_str(yaml, std::path::Path::new("t.yaml")).unwrap().0;
        assert_eq!(DataRoutingSettings::of(&c).unwrap(), None);
        assert!(
            DataRoutingPolicy::from_block(&serde_yaml::from_str("{bogus: 1}").unwrap()).is_err()
        );
    }
}
