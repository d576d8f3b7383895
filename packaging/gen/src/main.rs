//! tend-gen: writes tend's man pages and shell completions, from the clap
//! definitions in `tend::cli`, into a directory for the packaging scripts.
//!
//! Usage: `cargo run -p tend-gen -- OUTDIR`. Writes
//! `OUTDIR/man/*.1`, `OUTDIR/man/tend.units.5` and
//! `OUTDIR/completions/{bash,zsh,fish}/...`.

mod units_man;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use clap::{Command, CommandFactory};
use clap_complete::Shell;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const UNITS_README: &str = include_str!("../../../units/README.md");

fn main() {
    let Some(out) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: tend-gen OUTDIR");
        std::process::exit(2);
    };
    if let Err(e) = generate(&out) {
        eprintln!("tend-gen: cannot write into {}: {e}", out.display());
        std::process::exit(1);
    }
}

fn generate(out: &Path) -> io::Result<()> {
    let man = out.join("man");
    fs::create_dir_all(&man)?;
    let mut tend = tend::cli::Cli::command();
    // Propagates global options (--log-level, -v, ctl's --socket) into the
    // subcommands, so each page lists what really applies to it.
    tend.build();
    man_pages(&tend, "tend", &man)?;
    // `tendctl` is `tend ctl` under another name: its page points there.
    fs::write(man.join("tendctl.1"), ".so man1/tend-ctl.1\n")?;
    fs::write(man.join("tend.units.5"), units_man::render(UNITS_README, VERSION))?;

    let tendctl = tend::ctl::args::TendCtl::command();
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let dir = out.join("completions").join(shell.to_string());
        fs::create_dir_all(&dir)?;
        completion(shell, tend.clone(), "tend", &dir)?;
        completion(shell, tendctl.clone(), "tendctl", &dir)?;
    }
    Ok(())
}

/// `NAME.1` for `cmd`, then `NAME-SUB.1` for each of its subcommands, down
/// the tree (`tend-ctl-status.1`...). clap's own `help` is left out.
fn man_pages(cmd: &Command, name: &str, dir: &Path) -> io::Result<()> {
    let page = cmd.clone().name(name.to_string()).display_name(name.to_string());
    let mut text = Vec::new();
    clap_mangen::Man::new(page)
        .source(format!("tend {VERSION}"))
        .manual("tend manual")
        .render(&mut text)?;
    fs::write(dir.join(format!("{name}.1")), text)?;
    for sub in cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help" && !s.is_hide_set())
    {
        man_pages(sub, &format!("{name}-{}", sub.get_name()), dir)?;
    }
    Ok(())
}

/// One shell's completion script for `bin`, under the file name that shell
/// looks for (bash: `bin`, zsh: `_bin`, fish: `bin.fish`).
fn completion(shell: Shell, mut cmd: Command, bin: &str, dir: &Path) -> io::Result<()> {
    let file = match shell {
        Shell::Zsh => format!("_{bin}"),
        Shell::Fish => format!("{bin}.fish"),
        _ => bin.to_string(),
    };
    let mut text = Vec::new();
    clap_complete::generate(shell, &mut cmd, bin, &mut text);
    fs::write(dir.join(file), text)
}
