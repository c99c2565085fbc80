//! `emulator [--host] [--port] [--import file] [--export-on-exit file] [--rules file]`: the
//! embedded RTDB emulator as an offline sandbox, with Security Rules from `--rules` or
//! firebase.json, until SIGINT/SIGTERM; the export (and the rules beside it) written whole or not
//! at all.

use std::io::Write as _;
use std::path::Path;

use crate::cli::output::Io;
use crate::cli::signals::SIGNALS;
use crate::config::Config;
use crate::emulator::{rules_file_beside, Emulator, EmulatorOptions, RulesFile};
use crate::{Error, ExitStatus};

/// The files `msr-firebase emulator` reads and writes.
pub struct Files<'a> {
    pub import: Option<&'a str>,
    pub export: Option<&'a str>,
    pub rules: Option<&'a str>,
}

/// The rules files for the emulator: `--rules` for every namespace, else those firebase.json in
/// `cwd` names.
fn rules_files(rules: Option<&str>, cwd: &Path) -> crate::Result<Vec<RulesFile>> {
    if let Some(file) = rules {
        return Ok(vec![RulesFile {
            namespace: None,
            path: Config::resolve(cwd, file),
        }]);
    }
    let firebase_json = cwd.join("firebase.json");
    if !firebase_json.is_file() {
        return Ok(Vec::new());
    }
    crate::rules::firebase_json::rules_files(&firebase_json)
}

pub async fn run(host: &str, port: u16, files: Files<'_>, io: &mut Io, cwd: &Path) -> ExitStatus {
    let Files {
        import,
        export,
        rules,
    } = files;
    // Its data would be lost at exit: refused before it starts.
    if let Some(file) = export {
        let path = Config::resolve(cwd, file);
        if let Err(why) = crate::private_files::check_target(&path) {
            let e = Error::config(format!(
                "Cannot export the emulator's data to {} when it stops: {why}. Name a file in an existing, writable folder",
                path.display()
            ));
            return io.fail_plain("Cannot start the emulator", &e, ExitStatus::GeneralError);
        }
    }
    let started = match rules_files(rules, cwd) {
        Ok(rules) => {
            let shown: Vec<String> = rules
                .iter()
                .map(|r| {
                    let ns = r.namespace.as_deref().unwrap_or("every namespace");
                    format!("{} ({ns})", r.path.display())
                })
                .collect();
            Emulator::start(EmulatorOptions {
                host: host.to_string(),
                port,
                import: None,
                import_file: import.map(|f| Config::resolve(cwd, f)),
                rules,
            })
            .await
            .map(|emu| (emu, shown))
        }
        Err(e) => Err(e),
    };
    let (emu, rules_shown) = match started {
        Ok(e) => e,
        Err(e) => return io.fail_plain("Cannot start the emulator", &e, ExitStatus::GeneralError),
    };
    io.line(format!("RTDB emulator listening on {}", emu.url()));
    for r in &rules_shown {
        io.line(format!("  Security Rules: {r}"));
    }
    io.line(format!("  Database URL: {}?ns=<namespace>", emu.url()));
    io.line(format!(
        "  export FIREBASE_DATABASE_EMULATOR_HOST={}",
        emu.host_port()
    ));
    io.line("Press Ctrl-C to stop.");
    let _ = io.out.flush();
    if !SIGNALS.stop.is_requested() {
        SIGNALS.notify.notified().await;
    }
    let exported = export.map(|file| {
        let path = Config::resolve(cwd, file);
        (export_whole(&emu, &path), path)
    });
    let _ = emu.stop().await;
    if let Some((written, path)) = exported {
        if let Err(e) = written {
            let text = format!("✗ Cannot write {}: {}", path.display(), e.message);
            return io.fail(&e, ExitStatus::GeneralError, text);
        }
        io.line(format!("Data exported to {}", path.display()));
    }
    io.line("Emulator stopped.");
    ExitStatus::Success
}

/// Write the emulator's data to `path` and its rules beside it (`<name>.rules.json`), each whole
/// or not at all. Without rules none is written, and an earlier rules file there is emptied, so
/// it is not loaded again with the new data.
fn export_whole(emu: &Emulator, path: &Path) -> crate::Result<()> {
    crate::private_files::replace(path, |w| emu.write_export(w))
        .map_err(|e| Error::io(path.display(), e))?;
    let rules_path = rules_file_beside(path);
    let rules = match emu.saved_rules() {
        Some(text) => text,
        None if rules_path.exists() => "{}\n".to_string(),
        None => return Ok(()),
    };
    crate::private_files::replace(&rules_path, |w| w.write_all(rules.as_bytes()))
        .map_err(|e| Error::io(rules_path.display(), e))
}
