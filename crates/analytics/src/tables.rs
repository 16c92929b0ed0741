//! DataFrame rows as JSON and BSON, for report.json and the `analytics_*` collections.

use polars::prelude::*;
use serde_json::{Map, Value};

/// One JSON value of a cell.
fn json(value: AnyValue<'_>) -> Value {
    match value {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(b),
        AnyValue::String(s) => Value::String(s.to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(n) => n.into(),
        AnyValue::Int16(n) => n.into(),
        AnyValue::Int32(n) => n.into(),
        AnyValue::Int64(n) => n.into(),
        AnyValue::UInt8(n) => n.into(),
        AnyValue::UInt16(n) => n.into(),
        AnyValue::UInt32(n) => n.into(),
        AnyValue::UInt64(n) => n.into(),
        AnyValue::Float32(x) => {
            serde_json::Number::from_f64(f64::from(x)).map_or(Value::Null, Value::Number)
        }
        AnyValue::Float64(x) => serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number),
        other => Value::String(other.to_string()),
    }
}

/// Every row as a JSON object, in order.
pub fn rows(frame: &DataFrame) -> Vec<Map<String, Value>> {
    let columns = frame.columns();
    (0..frame.height())
        .map(|i| {
            columns
                .iter()
                .map(|c| {
                    (
                        c.name().to_string(),
                        c.get(i).map(json).unwrap_or(Value::Null),
                    )
                })
                .collect()
        })
        .collect()
}
