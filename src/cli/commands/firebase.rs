//! `firebase:info`, `firebase:test-connection`, `firebase:nodes`, `firebase:backup-nodes`: the
//! database commands, with the predecessor's output.

use serde_json::{json, Value};

use crate::cli::output::Io;
use crate::config::Config;
use crate::connection;
use crate::rtdb::Client;
use crate::ExitStatus;

/// `firebase:info`: where the runner connects and keeps its history and lock (no request).
pub fn info(cfg: &Config, io: &mut Io, json: bool) -> ExitStatus {
    let url = match crate::rtdb::DatabaseUrl::resolve(cfg.database_url.as_deref()) {
        Ok(u) => Some(u),
        Err(e) => {
            let text = format!("{} Error: {}", io.sym("❌", "✗"), e.message);
            return io.fail(
                &e,
                ExitStatus::of_failure(e.code, ExitStatus::DatabaseConnectionError),
                text,
            );
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
        return ExitStatus::Success;
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
    ExitStatus::Success
}

/// `firebase:test-connection`: the connection check (a shallow read of the history node).
pub async fn test_connection(client: &Client, cfg: &Config, io: &mut Io, json: bool) -> ExitStatus {
    let res = connection::check(client, cfg).await;
    match res {
        Ok(()) if json => {
            io.json(&json!({"connected": true, "databaseUrl": client.url().to_string()}));
            ExitStatus::Success
        }
        Err(e) if json => io.fail_with(
            json!({"connected": false, "databaseUrl": client.url().to_string()}),
            &e,
            ExitStatus::DatabaseConnectionError,
            "",
        ),
        Ok(()) => {
            io.line(format!(
                "{} Firebase connection successful!",
                io.sym("✅", "✓")
            ));
            io.line(format!("   Connected to: {}", client.url()));
            ExitStatus::Success
        }
        Err(e) => {
            io.eline(format!(
                "{} Firebase connection failed: {}",
                io.sym("❌", "✗"),
                e.message
            ));
            ExitStatus::DatabaseConnectionError
        }
    }
}

/// `firebase:nodes`: the nodes under `/<shift>`.
pub async fn nodes(client: &Client, cfg: &Config, io: &mut Io, json: bool) -> ExitStatus {
    match crate::backup::list_nodes(client, cfg).await {
        Ok(nodes) if json => {
            io.json(&json!({"path": cfg.shift_path().unwrap_or_default(), "nodes": nodes}));
            ExitStatus::Success
        }
        Ok(nodes) if nodes.is_empty() => {
            io.line(format!(
                "{}No nodes found in database",
                if io.fancy { "📭 " } else { "" }
            ));
            ExitStatus::Success
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
            ExitStatus::Success
        }
        Err(e) => {
            let text = format!("{} Error listing nodes: {}", io.sym("❌", "✗"), e.message);
            io.fail(
                &e,
                ExitStatus::of_failure(e.code, ExitStatus::DatabaseConnectionError),
                text,
            )
        }
    }
}

/// `firebase:backup-nodes <nodes...>`: those nodes' data as JSON on stdout.
pub async fn backup_nodes(
    client: &Client,
    cfg: &Config,
    nodes: &[String],
    io: &mut Io,
) -> ExitStatus {
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
            ExitStatus::Success
        }
        Err(e) => {
            let text = format!(
                "{} Error backing up nodes: {}",
                io.sym("❌", "✗"),
                e.message
            );
            io.fail(
                &e,
                ExitStatus::of_failure(e.code, ExitStatus::DatabaseConnectionError),
                text,
            )
        }
    }
}
