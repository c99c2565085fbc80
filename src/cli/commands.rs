//! The commands. Each returns its exit code; output goes through `Io`.

use std::path::Path;
use std::sync::Arc;

use serde_json::{json, Value};

use super::args::{BackupCommand, Cli, Command};
use super::live::Live;
use super::output::Io;
use super::{exit, exit_code, load_config, lock_cmds, CliHost, SIGNALS};
use crate::config::Config;
use crate::connection;
use crate::emulator::{rules_file_beside, Emulator, EmulatorOptions, RulesFile};
use crate::rtdb::Client;
use crate::{Error, ErrorCode};

pub async fn dispatch<H: CliHost>(cli: Cli, host: &H, io: &mut Io, cwd: &Path) -> i32 {
    let json = cli.global.json();
    // Commands that need neither configuration nor a database.
    if let Command::LockRelease { force: false } = &cli.command {
        return lock_cmds::release_needs_force(io);
    }
    if let Some(file) = &cli.global.env_file {
        let loaded = super::env_file::missing_vars(file, cwd, |k| std::env::var_os(k).is_some());
        let set = match loaded {
            Ok(vars) => host.set_env(vars).await,
            Err(e) => Err(e),
        };
        if let Err(e) = set {
            let text = format!("✗ Configuration error: {}", e.message);
            return io.fail(&e, exit::VALIDATION, text);
        }
    }
    match &cli.command {
        Command::Create { name, ext } => return create(&cli, name, ext, host, io, cwd).await,
        Command::Emulator {
            host: h,
            port,
            import,
            export_on_exit,
            rules,
        } => {
            let files = EmulatorFiles {
                import: import.as_deref(),
                export: export_on_exit.as_deref(),
                rules: rules.as_deref(),
            };
            return emulator(h, *port, files, io, cwd).await;
        }
        _ => {}
    }
    let default_code = command_failure_code(&cli.command);
    let cfg = match configure(&cli, host, io, cwd, default_code).await {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    if let Command::FirebaseInfo = cli.command {
        return firebase_info(&cfg, io, json, cwd);
    }
    let format = crate::log::LogFormat::parse(&cfg.log_format);
    // Retry notices print above the progress line, like the log.
    let shown = io.live.clone();
    let notice = connection::retry_reporter(move |line| {
        shown.line(&line.render(format, crate::runner::now_ms()))
    });
    if let Command::Rehearse { .. } = &cli.command {
        return super::rehearse::run(cli.command, &cli.global, cfg, host, io, cwd, notice).await;
    }
    let client = match connection::client_with(&cfg, cwd, Some(notice)) {
        Ok(c) => c,
        Err(e) => {
            let what = match e.code {
                ErrorCode::ConfigInvalid => "Configuration error",
                _ => "Connection error",
            };
            let text = format!("✗ {what}: {}", e.message);
            return io.fail(&e, exit_code(&e, exit::CONNECTION), text);
        }
    };
    match cli.command {
        Command::LockStatus => lock_cmds::status(&cfg.lock_service(&client), io, json).await,
        Command::LockRelease { force: true } => {
            lock_cmds::release(&cfg.lock_service(&client), io, json).await
        }
        Command::FirebaseTestConnection => test_connection(&client, &cfg, io, json).await,
        Command::FirebaseNodes => nodes(&client, &cfg, io, json).await,
        Command::FirebaseBackupNodes { nodes } => backup_nodes(&client, &cfg, &nodes, io).await,
        Command::Backup(cmd) => backup(cmd, &client, &cfg, io, json, cwd).await,
        other => super::run_cmds::run(other, &cli.global, cfg, client, host.clone(), io, cwd).await,
    }
}

/// Load the configuration (or print why it cannot be loaded and return the exit code), switch
/// the log to its format, and say which config file it came from (debug) and which files were
/// ignored (warn).
async fn configure<H: CliHost>(
    cli: &Cli,
    host: &H,
    io: &mut Io,
    cwd: &Path,
    default_code: i32,
) -> Result<Config, i32> {
    let (cfg, notes) = match load_config(&cli.global, host, cwd).await {
        Ok(loaded) => loaded,
        Err(e) => {
            let text = format!("✗ Configuration error: {}", e.message);
            return Err(io.fail(&e, exit_code(&e, default_code), text));
        }
    };
    let format = crate::log::LogFormat::parse(&cfg.log_format);
    io.set_log_json(format == crate::log::LogFormat::Json);
    let max = crate::log::LogLevel::parse(&cfg.log_level);
    for note in notes.iter().filter(|n| n.level <= max) {
        io.live.line(&note.render(format, crate::runner::now_ms()));
    }
    Ok(cfg)
}

/// 7 for connection problems, else the command's own failure code.
fn connection_or(e: &Error, code: i32) -> i32 {
    match e.code {
        ErrorCode::ConnectionFailed | ErrorCode::DatabaseNotFound | ErrorCode::AuthFailed => {
            exit::CONNECTION
        }
        _ => code,
    }
}

fn command_failure_code(c: &Command) -> i32 {
    match c {
        Command::Migrate { .. } | Command::Rehearse { .. } => exit::MIGRATION_FAILED,
        Command::Down { .. } => exit::ROLLBACK_FAILED,
        Command::Validate => exit::VALIDATION,
        Command::Backup(BackupCommand::Create) => exit::BACKUP_FAILED,
        Command::Backup(BackupCommand::Restore { .. }) => exit::RESTORE_FAILED,
        Command::FirebaseInfo
        | Command::FirebaseTestConnection
        | Command::FirebaseNodes
        | Command::FirebaseBackupNodes { .. } => exit::CONNECTION,
        _ => exit::GENERAL,
    }
}

fn firebase_info(cfg: &Config, io: &mut Io, json: bool, _cwd: &Path) -> i32 {
    let url = match crate::rtdb::DatabaseUrl::resolve(cfg.database_url.as_deref()) {
        Ok(u) => Some(u),
        Err(e) => {
            let text = format!("{} Error: {}", io.sym("❌", "✗"), e.message);
            return io.fail(&e, exit_code(&e, exit::CONNECTION), text);
        }
    };
    let url_text = url
        .as_ref()
        .map(|u| u.to_string())
        .unwrap_or_else(|| "Not set (using emulator?)".into());
    if json {
        io.json(&json!({
            "databaseUrl": url_text, "emulator": url.as_ref().is_some_and(|u| u.emulator),
            "shift": cfg.shift_path(), "tableName": cfg.table_name,
            "lockPath": crate::lock::lock_path(cfg.shift_path().as_deref()), "lockingEnabled": cfg.locking.enabled,
        }));
        return exit::SUCCESS;
    }
    io.line("");
    io.line(format!(
        "{}Firebase Connection Information:",
        if io.fancy { "📊 " } else { "" }
    ));
    io.line("");
    io.line(format!("  Database URL: {url_text}"));
    io.line(format!(
        "  Shift Path:   {}",
        cfg.shift_path()
            .map(|s| format!("/{s}"))
            .unwrap_or_else(|| "/".into())
    ));
    io.line(format!("  Table Name:   {}", cfg.table_name));
    io.line(format!(
        "  Lock Path:    {}",
        crate::lock::lock_path(cfg.shift_path().as_deref())
    ));
    io.line(format!(
        "  Locking:      {}",
        if cfg.locking.enabled {
            "enabled"
        } else {
            "disabled"
        }
    ));
    io.line("");
    exit::SUCCESS
}

async fn test_connection(client: &Client, cfg: &Config, io: &mut Io, json: bool) -> i32 {
    let res = connection::check(client, cfg).await;
    match res {
        Ok(()) if json => {
            io.json(&json!({"connected": true, "databaseUrl": client.url().to_string()}));
            exit::SUCCESS
        }
        Err(e) if json => io.fail_with(
            json!({"connected": false, "databaseUrl": client.url().to_string()}),
            &e,
            exit::CONNECTION,
            "",
        ),
        Ok(()) => {
            io.line(format!(
                "{} Firebase connection successful!",
                io.sym("✅", "✓")
            ));
            io.line(format!("   Connected to: {}", client.url()));
            exit::SUCCESS
        }
        Err(e) => {
            io.eline(format!(
                "{} Firebase connection failed: {}",
                io.sym("❌", "✗"),
                e.message
            ));
            exit::CONNECTION
        }
    }
}

async fn nodes(client: &Client, cfg: &Config, io: &mut Io, json: bool) -> i32 {
    match crate::backup::list_nodes(client, cfg).await {
        Ok(nodes) if json => {
            io.json(&json!({"path": cfg.shift_path().unwrap_or_default(), "nodes": nodes}));
            exit::SUCCESS
        }
        Ok(nodes) if nodes.is_empty() => {
            io.line(format!(
                "{}No nodes found in database",
                if io.fancy { "📭 " } else { "" }
            ));
            exit::SUCCESS
        }
        Ok(nodes) => {
            io.line("");
            io.line(format!("{}Root Nodes:", if io.fancy { "📂 " } else { "" }));
            io.line("");
            for (i, n) in nodes.iter().enumerate() {
                io.line(format!("  {}. {n}", i + 1));
            }
            io.line("");
            io.line(format!(
                "  Total: {} node{}",
                nodes.len(),
                if nodes.len() == 1 { "" } else { "s" }
            ));
            io.line("");
            exit::SUCCESS
        }
        Err(e) => {
            let text = format!("{} Error listing nodes: {}", io.sym("❌", "✗"), e.message);
            io.fail(&e, exit_code(&e, exit::CONNECTION), text)
        }
    }
}

async fn backup_nodes(client: &Client, cfg: &Config, nodes: &[String], io: &mut Io) -> i32 {
    match crate::backup::backup_nodes(client, cfg, nodes).await {
        Ok(map) => {
            io.line("");
            io.line(format!("{}Node Backup:", if io.fancy { "💾 " } else { "" }));
            io.line("");
            for (node, value) in &map {
                if value.is_null() {
                    io.line(format!("  {}  {node}: (not found)", io.sym("⚠️", "!")));
                } else {
                    let bytes = serde_json::to_string(value).map(|s| s.len()).unwrap_or(0);
                    io.line(format!("  {} {node}: {bytes} bytes", io.sym("✅", "✓")));
                }
            }
            io.line("");
            io.line(format!("{}Backup Data:", if io.fancy { "📄 " } else { "" }));
            io.line("");
            io.json(&Value::Object(map));
            exit::SUCCESS
        }
        Err(e) => {
            let text = format!(
                "{} Error backing up nodes: {}",
                io.sym("❌", "✗"),
                e.message
            );
            io.fail(&e, exit_code(&e, exit::CONNECTION), text)
        }
    }
}

async fn backup(
    cmd: BackupCommand,
    client: &Client,
    cfg: &Config,
    io: &mut Io,
    json: bool,
    cwd: &Path,
) -> i32 {
    let live = io.live.clone();
    match cmd {
        BackupCommand::Create => match create_backup(client, cfg, cwd, &live).await {
            Ok(path) => {
                if json {
                    io.json(&json!({"path": path}));
                } else {
                    io.line(format!(
                        "{} Backup created successfully: {}",
                        io.green("✓"),
                        path.display()
                    ));
                }
                exit::SUCCESS
            }
            Err(e) => {
                let text = format!("{} Backup creation failed: {}", io.red("✗"), e.message);
                io.fail(&e, connection_or(&e, exit::BACKUP_FAILED), text)
            }
        },
        BackupCommand::Restore { file } => {
            let path = Config::resolve(cwd, &file);
            let progress = Arc::new(crate::backup::Progress::default());
            let opts = crate::backup::RestoreOptions {
                progress: Some(progress.clone()),
                stop: Some(SIGNALS.stop.shared()),
                ..Default::default()
            };
            let what = crate::backup::shown(cfg.shift_path().as_deref());
            let work = crate::backup::restore_with(client, cfg, &path, &opts);
            live.gauge(&what, progress.clone());
            match live.while_running(work).await {
                Ok(_) => {
                    if json {
                        io.json(&json!({"restored": path}));
                    } else {
                        io.line(format!(
                            "{} Database restored successfully from {}",
                            io.green("✓"),
                            path.display()
                        ));
                    }
                    exit::SUCCESS
                }
                Err(e) => {
                    let text = format!("{} Restore failed: {}", io.red("✗"), e.message);
                    io.fail(&e, connection_or(&e, exit::RESTORE_FAILED), text)
                }
            }
        }
        BackupCommand::List => match crate::backup::list(cfg, cwd).await {
            Ok(list) => {
                if json {
                    io.json(&serde_json::to_value(&list).unwrap_or(Value::Null));
                } else if list.is_empty() {
                    io.line(format!(
                        "No backups in {}",
                        cfg.backup_folder_path(cwd).display()
                    ));
                } else {
                    for b in &list {
                        io.line(format!(
                            "  {}  {:>10} bytes  {}",
                            b.created_at.as_deref().unwrap_or("(unknown time)"),
                            b.size,
                            b.path.display()
                        ));
                    }
                }
                exit::SUCCESS
            }
            Err(e) => {
                let text = format!("{} Listing backups failed: {}", io.red("✗"), e.message);
                io.fail(&e, exit::GENERAL, text)
            }
        },
    }
}

/// `backup create` with progress on stderr, stopped by SIGINT/SIGTERM.
async fn create_backup(
    client: &Client,
    cfg: &Config,
    cwd: &Path,
    live: &Live,
) -> crate::Result<std::path::PathBuf> {
    let progress = Arc::new(crate::backup::Progress::default());
    let opts = crate::backup::BackupOptions {
        progress: Some(progress.clone()),
        stop: Some(SIGNALS.stop.shared()),
        ..Default::default()
    };
    let what = crate::backup::shown(cfg.shift_path().as_deref());
    let work = crate::backup::create_with(client, cfg, cwd, &opts);
    live.gauge(&what, progress.clone());
    live.while_running(work).await
}

async fn create<H: CliHost>(
    cli: &Cli,
    name: &str,
    ext: &str,
    host: &H,
    io: &mut Io,
    cwd: &Path,
) -> i32 {
    let cfg = match configure(cli, host, io, cwd, exit::GENERAL).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match super::scaffold::create_script(
        &cfg.folder_path(cwd),
        name,
        ext,
        chrono::Local::now().naive_local(),
    ) {
        Ok(path) => {
            if cli.global.json() {
                io.json(&json!({"path": path}));
            } else {
                io.line(format!("{} Created {}", io.green("✓"), path.display()));
            }
            exit::SUCCESS
        }
        Err(e) => {
            let text = format!("✗ Create failed: {}", e.message);
            io.fail(&e, exit_code(&e, exit::GENERAL), text)
        }
    }
}

/// The files `msr-firebase emulator` reads and writes.
struct EmulatorFiles<'a> {
    import: Option<&'a str>,
    export: Option<&'a str>,
    rules: Option<&'a str>,
}

/// The rules files for the emulator: `--rules` for every namespace, else those firebase.json in
/// `cwd` names.
fn emulator_rules(rules: Option<&str>, cwd: &Path) -> crate::Result<Vec<RulesFile>> {
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

async fn emulator(host: &str, port: u16, files: EmulatorFiles<'_>, io: &mut Io, cwd: &Path) -> i32 {
    // Its data would be lost at exit: refused before it starts.
    if let Some(file) = files.export {
        let path = Config::resolve(cwd, file);
        if let Err(why) = crate::private_files::check_target(&path) {
            let e = Error::config(format!(
                "Cannot export the emulator's data to {} when it stops: {why}. Name a file in an existing, writable folder",
                path.display()
            ));
            let text = format!("✗ Cannot start the emulator: {}", e.message);
            return io.fail(&e, exit_code(&e, exit::GENERAL), text);
        }
    }
    let started = match emulator_rules(files.rules, cwd) {
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
                import_file: files.import.map(|f| Config::resolve(cwd, f)),
                rules,
            })
            .await
            .map(|emu| (emu, shown))
        }
        Err(e) => Err(e),
    };
    let (emu, rules_shown) = match started {
        Ok(e) => e,
        Err(e) => {
            let text = format!("✗ Cannot start the emulator: {}", e.message);
            return io.fail(&e, exit_code(&e, exit::GENERAL), text);
        }
    };
    let export = files.export;
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
            return io.fail(&e, exit::GENERAL, text);
        }
        io.line(format!("Data exported to {}", path.display()));
    }
    io.line("Emulator stopped.");
    exit::SUCCESS
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

use std::io::Write as _;
