//! Avro schemas as the registry is given them: a small model and its JSON
//! text, with names made valid the way Debezium's `avro` name adjustment
//! makes them.

use serde_json::{json, Map, Value};

/// A schema, with the extra properties Kafka Connect's Avro converter
/// writes (`connect.name`, `connect.version`, `connect.parameters`,
/// `logicalType`, `precision`, `scale`, ...).
#[derive(Debug, Clone, PartialEq)]
pub enum Schema {
    Boolean(Props),
    Int(Props),
    Long(Props),
    Float(Props),
    Double(Props),
    Bytes(Props),
    String(Props),
    Record(Record),
    /// `["null", T]` with `"default": null` where it is a field.
    Optional(Box<Schema>),
}

/// Extra properties, in the order written.
pub type Props = Vec<(&'static str, Value)>;

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The full name (`namespace.name`).
    pub name: String,
    pub fields: Vec<Field>,
    pub props: Props,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

impl Schema {
    /// A primitive with no extra property.
    pub fn plain(kind: fn(Props) -> Schema) -> Schema {
        kind(Vec::new())
    }

    pub fn optional(self) -> Schema {
        match self {
            s @ Schema::Optional(_) => s,
            s => Schema::Optional(Box::new(s)),
        }
    }

    /// The schema's JSON, as registered. A record named before (in
    /// `named`) is referred to by its name, as Avro requires.
    pub fn to_json(&self, named: &mut Vec<String>) -> Value {
        let prim = |t: &str, props: &Props| {
            if props.is_empty() {
                Value::String(t.into())
            } else {
                let mut m = Map::new();
                m.insert("type".into(), Value::String(t.into()));
                for (k, v) in props {
                    m.insert((*k).into(), v.clone());
                }
                Value::Object(m)
            }
        };
        match self {
            Schema::Boolean(p) => prim("boolean", p),
            Schema::Int(p) => prim("int", p),
            Schema::Long(p) => prim("long", p),
            Schema::Float(p) => prim("float", p),
            Schema::Double(p) => prim("double", p),
            Schema::Bytes(p) => prim("bytes", p),
            Schema::String(p) => prim("string", p),
            Schema::Optional(inner) => json!(["null", inner.to_json(named)]),
            Schema::Record(r) => {
                if named.contains(&r.name) {
                    return Value::String(r.name.clone());
                }
                named.push(r.name.clone());
                let fields: Vec<Value> = r
                    .fields
                    .iter()
                    .map(|f| {
                        let mut m = Map::new();
                        m.insert("name".into(), Value::String(f.name.clone()));
                        m.insert("type".into(), f.schema.to_json(named));
                        if matches!(f.schema, Schema::Optional(_)) {
                            m.insert("default".into(), Value::Null);
                        }
                        Value::Object(m)
                    })
                    .collect();
                let (namespace, name) = match r.name.rsplit_once('.') {
                    Some((ns, n)) => (Some(ns), n),
                    None => (None, r.name.as_str()),
                };
                let mut m = Map::new();
                m.insert("type".into(), "record".into());
                m.insert("name".into(), Value::String(name.into()));
                if let Some(ns) = namespace {
                    m.insert("namespace".into(), Value::String(ns.into()));
                }
                m.insert("fields".into(), Value::Array(fields));
                for (k, v) in &r.props {
                    m.insert((*k).into(), v.clone());
                }
                Value::Object(m)
            }
        }
    }

    /// The schema's text, as registered.
    pub fn text(&self) -> String {
        self.to_json(&mut Vec::new()).to_string()
    }
}

/// A name part valid in Avro (`[A-Za-z_][A-Za-z0-9_]*`), as Debezium's
/// `schema.name.adjustment.mode=avro` makes it: every other character
/// becomes `_`, and a leading digit gets a `_` before it.
pub fn adjust(part: &str) -> String {
    let mut out: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A full name of `parts`, each adjusted.
pub fn full_name(parts: &[&str]) -> String {
    parts
        .iter()
        .map(|p| adjust(p))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_adjusted_as_debeziums_avro_mode_does() {
        assert_eq!(adjust("orders"), "orders");
        assert_eq!(adjust("order-items"), "order_items");
        assert_eq!(adjust("2024_sales"), "_2024_sales");
        assert_eq!(adjust("prix €"), "prix__");
        assert_eq!(
            full_name(&["shop-eu", "inventory", "t.1", "Value"]),
            "shop_eu.inventory.t_1.Value"
        );
    }

    #[test]
    fn a_record_renders_with_its_namespace_defaults_and_properties() {
        let decimal = Schema::Bytes(vec![
            ("scale", json!(2)),
            ("precision", json!(10)),
            ("connect.version", json!(1)),
            (
                "connect.parameters",
                json!({"scale": "2", "connect.decimal.precision": "10"}),
            ),
            (
                "connect.name",
                json!("org.apache.kafka.connect.data.Decimal"),
            ),
            ("logicalType", json!("decimal")),
        ]);
        let value = Schema::Record(Record {
            name: "srv.shop.orders.Value".into(),
            fields: vec![
                Field {
                    name: "id".into(),
                    schema: Schema::plain(Schema::Int),
                },
                Field {
                    name: "price".into(),
                    schema: decimal.optional(),
                },
            ],
            props: vec![("connect.name", json!("srv.shop.orders.Value"))],
        });
        let envelope = Schema::Record(Record {
            name: "srv.shop.orders.Envelope".into(),
            fields: vec![
                Field {
                    name: "before".into(),
                    schema: value.clone().optional(),
                },
                Field {
                    name: "after".into(),
                    schema: value.optional(),
                },
            ],
            props: vec![],
        });
        let v: Value = serde_json::from_str(&envelope.text()).unwrap();
        assert_eq!(v["namespace"], "srv.shop.orders");
        assert_eq!(v["name"], "Envelope");
        // The second use of Value is its name.
        assert_eq!(
            v["fields"][1]["type"],
            json!(["null", "srv.shop.orders.Value"])
        );
        assert_eq!(v["fields"][1]["default"], Value::Null);
        let before = &v["fields"][0]["type"][1];
        assert_eq!(before["name"], "Value");
        assert_eq!(before["fields"][0], json!({"name": "id", "type": "int"}));
        assert_eq!(before["fields"][1]["type"][1]["logicalType"], "decimal");
        assert_eq!(before["fields"][1]["default"], Value::Null);
    }
}
