//! `clinvk completions <shell>` and `clinvk man`: fitting into the shell and the manual, both
//! from the clap definitions themselves, so that they never drift from the commands.

use std::io::Write;
use std::path::PathBuf;

use clap::{Args, CommandFactory, ValueEnum};
use clap_complete::env::{Bash, Elvish, EnvCompleter, Fish, Powershell, Zsh};

use crate::cli::complete::ENV;
use crate::cli::output::print;
use crate::cli::Cli;
use crate::error::{exit, Error, Result};

/// `completions`: the script a shell sources to complete clinvk.
#[derive(Debug, Args)]
#[command(after_help = "Add to your shell's startup file:\n  \
    bash:       source <(clinvk completions bash)      (~/.bashrc)\n  \
    zsh:        source <(clinvk completions zsh)       (~/.zshrc)\n  \
    fish:       clinvk completions fish | source       (~/.config/fish/config.fish)\n  \
    elvish:     eval (clinvk completions elvish | slurp)   (~/.config/elvish/rc.elv)\n  \
    powershell: clinvk completions powershell | Out-String | Invoke-Expression   ($PROFILE)\n\
    Session ids, tags, config keys and backends are completed from your sessions as you type.")]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

pub fn completions(args: &CompletionsArgs) -> Result<i32> {
    let shell: &dyn EnvCompleter = match args.shell {
        Shell::Bash => &Bash,
        Shell::Zsh => &Zsh,
        Shell::Fish => &Fish,
        Shell::Elvish => &Elvish,
        Shell::Powershell => &Powershell,
    };
    // The script runs this same binary on every tab: by its path when it was started by one
    // (a build not on PATH), else by its name.
    let started_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("clinvk"));
    let completer = if started_as.components().count() > 1 {
        std::path::absolute(&started_as).unwrap_or(started_as)
    } else {
        started_as
    };
    let mut script = Vec::new();
    shell
        .write_registration(
            ENV,
            "clinvk",
            "clinvk",
            &completer.to_string_lossy(),
            &mut script,
        )
        .map_err(|e| Error::io("stdout", e))?;
    print(&String::from_utf8_lossy(&script))?;
    Ok(exit::OK)
}

/// `man`: the manual page.
#[derive(Debug, Args)]
#[command(
    after_help = "Read it with `clinvk man | man -l -`, or install the pages:\n  \
    clinvk man --dir ~/.local/share/man/man1   (then `man clinvk`, `man clinvk-sessions-stats`)"
)]
pub struct ManArgs {
    /// Write a page for clinvk and one for each command (clinvk-sessions-list.1, ...) into
    /// this directory instead of printing clinvk's
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn man(args: &ManArgs) -> Result<i32> {
    let cmd = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            clap_mangen::generate_to(cmd, dir).map_err(|e| Error::io(dir, e))?;
            crate::cli::output::message(&format!(
                "clinvk: wrote the manual pages to {}",
                dir.display()
            ));
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Error::io("stdout", e))?;
            let mut out = std::io::stdout().lock();
            crate::cli::output::unless_closed(
                out.write_all(&page)
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::io("stdout", e)),
            )?;
        }
    }
    Ok(exit::OK)
}
