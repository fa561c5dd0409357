//! `clinvk config ...`.

use serde_json::{Map, Value};

use super::output::{self, print, print_json};
use super::{ConfigCommand, Context};
use crate::config::ConfigFile;
use crate::error::{exit, Result};

/// Scalars print bare (`30`, `true`, `text`) for `$(clinvk config get ...)`; lists as JSON;
/// a key that is not set as an empty line.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

pub fn run(ctx: &Context, cmd: ConfigCommand) -> Result<i32> {
    let path = &ctx.paths.config;
    match cmd {
        ConfigCommand::Path => print(&format!("{}\n", path.display()))?,
        ConfigCommand::Get { key } => {
            print(&format!("{}\n", plain(&ConfigFile::load(path)?.get(&key)?)))?
        }
        ConfigCommand::Set { key, value } => {
            let mut file = ConfigFile::load_unchecked(path)?;
            let stored = file.set(&key, &value)?;
            output::message(&format!(
                "Set {key} = {} in {}",
                plain(&stored),
                path.display()
            ));
        }
        ConfigCommand::Show { json } => {
            let values = ConfigFile::load(path)?.effective()?;
            if json {
                let map: Map<String, Value> = values
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect();
                print_json(&map)?;
            } else {
                let text: String = values
                    .iter()
                    .map(|(k, v)| match v {
                        Value::Null => format!("{k} = (not set)\n"),
                        v => format!("{k} = {}\n", plain(v)),
                    })
                    .collect();
                print(&text)?;
            }
        }
    }
    Ok(exit::OK)
}
