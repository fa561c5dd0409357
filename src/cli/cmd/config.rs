//! `clinvk config get|set|show|path`.

use clap::Subcommand;
use serde_json::{Map, Value};

use crate::cli::output::{self, print, print_json};
use crate::cli::Context;
use crate::config::ConfigFile;
use crate::error::{exit, Result};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective value of a key (the default when unset)
    Get {
        #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::config_keys))]
        key: String,
    },
    /// Set a key, keeping the rest of the file; VALUE is YAML, e.g. 7, true, '["a", "b"]'
    Set {
        #[arg(add = clap_complete::engine::ArgValueCompleter::new(crate::cli::complete::config_keys))]
        key: String,
        // A negative number is a value here (and gets a clear error), not an unknown flag.
        #[arg(allow_hyphen_values = true)]
        value: String,
    },
    /// Print every setting with its effective value
    Show {
        /// Print a JSON object of key: value
        #[arg(long)]
        json: bool,
    },
    /// Print the path of the config file
    Path,
}

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
            let stored = ConfigFile::set_in(path, &key, &value, ctx.lock_timeout())?;
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
