//! Layering of several `--policy-config` files: later files merge over earlier ones.
//! Mappings merge key by key; lists of mappings that carry an `id` (targets) merge by id;
//! every other value is replaced.

use serde_yaml::Value;

pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if has_ids(b) && has_ids(&o) => {
            for item in o {
                let id = item.get("id").cloned();
                match b.iter_mut().find(|x| x.get("id") == id.as_ref()) {
                    Some(slot) => merge(slot, item),
                    None => b.push(item),
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

fn has_ids(items: &[Value]) -> bool {
    !items.is_empty() && items.iter().all(|i| i.get("id").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_is_replaced_not_appended() {
        let mut a: Value =
            serde_yaml::from_str("policies: {chain: [a, b]}\npack: {name: x}").unwrap();
        let b: Value = serde_yaml::from_str("policies: {chain: [c]}").unwrap();
        merge(&mut a, b);
        assert_eq!(
            a["policies"]["chain"],
            serde_yaml::from_str::<Value>("[c]").unwrap()
        );
        assert_eq!(a["pack"]["name"], "x");
    }
}
