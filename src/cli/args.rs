//! Command-line arguments of `msr-firebase` (clap).

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::Value;
use strum::VariantNames;

use crate::config::UnindexedQueries;
use crate::log::LogFormat;
use crate::ExitStatus;

#[derive(Debug, Parser)]
#[command(
    name = "msr-firebase",
    version,
    about = "Firebase Realtime Database Migration Runner",
    after_help = ExitStatus::help(),
    disable_help_subcommand = false
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalFlags,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalFlags {
    /// Configuration file (msr.config.js|cjs|mjs|ts|json); default: MSR_CONFIG_FILE, then msr.config.* in the working directory
    #[arg(short = 'c', long, global = true, value_name = "path")]
    pub config_file: Option<String>,
    /// Longest time a JS config module may take to load, in ms (default: 30000)
    #[arg(long, global = true, value_name = "ms", value_parser = clap::value_parser!(u64).range(1..=2_147_483_647))]
    pub config_timeout: Option<u64>,
    /// Load environment variables from this .env file before the configuration (variables already set in the environment win)
    #[arg(long, global = true, value_name = "path")]
    pub env_file: Option<String>,
    /// Folder with migration scripts
    #[arg(long, global = true, value_name = "path")]
    pub folder: Option<String>,
    /// Node that stores the migration history
    #[arg(long, global = true, value_name = "name")]
    pub table_name: Option<String>,
    /// Path prefix for all data (e.g. production); default: the database root
    #[arg(long, global = true, value_name = "path")]
    pub shift: Option<String>,
    /// Database URL (https://<db>.firebaseio.com, https://<db>.<region>.firebasedatabase.app, http://host:port?ns=<ns>); repeat it to run on several databases (databaseUrls)
    #[arg(long, global = true, value_name = "url")]
    pub database_url: Vec<String>,
    /// Run on this database of the set only (databases / databaseUrls; repeatable; default: all)
    #[arg(long = "database", global = true, value_name = "name")]
    pub databases: Vec<String>,
    /// How many databases of the set run at a time (concurrency; default: 4)
    #[arg(long, global = true, value_name = "n")]
    pub concurrency: Option<u64>,
    /// After one database of the set fails, start no other and stop the running ones after their current migration (failFast)
    #[arg(long, global = true)]
    pub fail_fast: bool,
    /// Run on every active Realtime Database instance of --project, as the Firebase Realtime Database Management API lists them, instead of configured databases
    #[arg(long, global = true, requires = "project")]
    pub all_instances: bool,
    /// The Firebase project whose instances --all-instances runs on (its id, e.g. my-app-1234)
    #[arg(long, global = true, value_name = "id", requires = "all_instances")]
    pub project: Option<String>,
    /// Credentials file (a service account key or another ADC file); unset: GOOGLE_APPLICATION_CREDENTIALS, gcloud's file, the metadata server
    #[arg(long, global = true, value_name = "path")]
    pub credentials: Option<String>,
    /// Show what would run without changing anything
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Do not take the migration lock
    #[arg(long, global = true)]
    pub no_lock: bool,
    /// The scripts' writes carry the lock's epoch for the database's rules to check (locking.serverFencing; see rules:fencing)
    #[arg(long, global = true)]
    pub server_fencing: bool,
    /// Every write of the run (the scripts' db, bulkWriter, the lock, the history) asks the database not to fire Cloud Functions triggers (writes.disableTriggers)
    #[arg(long, global = true)]
    pub disable_triggers: bool,
    /// Restores (backup restore, a rollback's restore) fire Cloud Functions triggers; by default they do not (backup.restoreTriggers)
    #[arg(long, global = true)]
    pub restore_triggers: bool,
    /// Output format
    #[arg(long, global = true, value_enum, value_name = "format")]
    pub format: Option<Format>,
    /// Log level (error, warn, info, debug)
    #[arg(long, global = true, value_name = "level")]
    pub log_level: Option<String>,
    /// Log lines on stderr as text (default) or one JSON object per line (also MSR_LOG_FORMAT, logFormat)
    #[arg(long, global = true, value_name = "format", value_parser = log_format())]
    pub log_format: Option<LogFormat>,
    /// Rows shown by list: the newest N migrations (0 = all)
    #[arg(long, global = true, value_name = "number")]
    pub display_limit: Option<u64>,
    /// Backup mode (full, create_only, restore_only, manual)
    #[arg(long, global = true, value_name = "mode")]
    pub backup_mode: Option<String>,
    /// Longest time one migration script may run, in ms (default: no limit; scriptTimeout)
    #[arg(long, global = true, value_name = "ms")]
    pub script_timeout: Option<u64>,
    /// A script's query the database refuses for want of an index: answered on the client with a warning (fallback, the default, as firebase-admin does) or failed naming the .indexOn to add (error) (queries.unindexed)
    #[arg(long, global = true, value_name = "fallback|error", value_parser = unindexed_queries())]
    pub unindexed_queries: Option<UnindexedQueries>,
}

/// `--unindexed-queries`: one of `UnindexedQueries`' names.
fn unindexed_queries() -> impl TypedValueParser<Value = UnindexedQueries> {
    PossibleValuesParser::new(UnindexedQueries::VARIANTS).map(|s| s.parse().unwrap_or_default())
}

/// `--log-format`: one of `LogFormat`'s names.
fn log_format() -> impl TypedValueParser<Value = LogFormat> {
    PossibleValuesParser::new(LogFormat::VARIANTS).map(|s| s.parse().unwrap_or_default())
}

impl GlobalFlags {
    /// The flags layer of the configuration (only what was given).
    pub fn config_layer(&self) -> Value {
        let mut pairs: Vec<(String, Value)> = Vec::new();
        let mut put = |k: &str, v: Value| pairs.push((k.to_string(), v));
        if let Some(v) = &self.folder {
            put("folder", v.clone().into());
        }
        if let Some(v) = &self.table_name {
            put("tableName", v.clone().into());
        }
        if let Some(v) = &self.shift {
            put("shift", v.clone().into());
        }
        match self.database_url.as_slice() {
            [] => {}
            [one] => put("databaseUrl", one.clone().into()),
            many => put("databaseUrls", many.to_vec().into()),
        }
        if let Some(v) = self.concurrency {
            put("concurrency", v.into());
        }
        if self.fail_fast {
            put("failFast", true.into());
        }
        if let Some(v) = &self.credentials {
            put("applicationCredentials", v.clone().into());
        }
        if self.dry_run {
            put("dryRun", true.into());
        }
        if let Some(v) = &self.log_level {
            put("logLevel", v.clone().into());
        }
        if let Some(v) = self.log_format {
            put("logFormat", v.to_string().into());
        }
        if let Some(v) = self.display_limit {
            put("displayLimit", v.into());
        }
        if let Some(v) = &self.backup_mode {
            put("backupMode", v.clone().into());
        }
        if let Some(v) = self.script_timeout {
            put("scriptTimeout", v.into());
        }
        if self.server_fencing {
            put("locking.serverFencing", true.into());
        }
        if let Some(v) = self.unindexed_queries {
            put("queries.unindexed", v.to_string().into());
        }
        if self.disable_triggers {
            put("writes.disableTriggers", true.into());
        }
        if self.restore_triggers {
            put("backup.restoreTriggers", true.into());
        }
        crate::config::layer_from_pairs(pairs)
    }

    pub fn json(&self) -> bool {
        self.format == Some(Format::Json)
    }
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run pending migrations
    #[command(visible_alias = "up")]
    Migrate {
        /// Stop at this version (e.g. 202501010002)
        #[arg(value_name = "targetVersion")]
        target: Option<String>,
        #[command(flatten)]
        wait: WaitArgs,
        /// Record the pending migrations (up to targetVersion) as executed without running them, under the lock: for adopting a database that already has their changes
        #[arg(long)]
        mark_applied: bool,
    },
    /// List all migrations with status
    List {
        /// Show only the newest N migrations, executed and pending alike (0 = all; default: displayLimit)
        #[arg(short = 'n', long, value_name = "count", default_value = "0")]
        number: String,
    },
    /// Roll back migrations to target version
    #[command(visible_alias = "rollback")]
    Down {
        /// Roll back everything newer than this version (0 = everything)
        #[arg(value_name = "targetVersion", required_unless_present = "steps")]
        target: Option<String>,
        /// Roll back the newest N executed migrations instead of naming a version
        #[arg(long, value_name = "N", conflicts_with = "target", value_parser = clap::value_parser!(u32).range(1..))]
        steps: Option<u32>,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Run the pending migrations on a copy of the data in an embedded emulator and report what they would change (the database is only read)
    Rehearse(RehearseArgs),
    /// Validate migration scripts without executing them
    Validate,
    /// Backup and restore operations
    #[command(subcommand)]
    Backup(BackupCommand),
    /// Display current migration lock status
    #[command(name = "lock:status")]
    LockStatus,
    /// Force-release migration lock (⚠️ DANGEROUS)
    #[command(name = "lock:release")]
    LockRelease {
        /// Required: confirms that no migration is running
        #[arg(short, long)]
        force: bool,
    },
    /// Show Firebase connection information
    #[command(name = "firebase:info")]
    FirebaseInfo,
    /// Test Firebase database connection
    #[command(name = "firebase:test-connection")]
    FirebaseTestConnection,
    /// List all root nodes in Firebase database
    #[command(name = "firebase:nodes")]
    FirebaseNodes,
    /// Backup specific Firebase nodes
    #[command(name = "firebase:backup-nodes")]
    FirebaseBackupNodes {
        /// Node paths to backup (e.g., users posts)
        #[arg(value_name = "nodes", required = true, num_args = 1..)]
        nodes: Vec<String>,
    },
    /// Create a new timestamped migration script
    Create {
        /// What the migration does, e.g. add_user_roles
        name: String,
        /// Script type
        #[arg(long, value_parser = ["js", "cjs", "mjs", "ts"], default_value = "js")]
        ext: String,
    },
    /// Print the Security Rules that make the database refuse a write from a lock holder that was taken over (locking.serverFencing), ready to merge
    #[command(name = "rules:fencing")]
    RulesFencing {
        /// Paths the migrations write, relative to the shift (default: the whole shift)
        #[arg(value_name = "path")]
        paths: Vec<String>,
    },
    /// Run the embedded Realtime Database emulator (offline sandbox)
    Emulator {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// 0 = any free port
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// Load data from a JSON file ({"<namespace>": {...}}, or a plain tree for the default namespace)
        #[arg(long, value_name = "file")]
        import: Option<String>,
        /// Write all data to this file when stopped (and the rules to <file>.rules.json beside it)
        #[arg(long, value_name = "file")]
        export_on_exit: Option<String>,
        /// Security Rules for every namespace (a rules file; comments allowed). Without it: firebase.json's database rules, if the current directory has one
        #[arg(long, value_name = "file")]
        rules: Option<String>,
    },
}

// `rehearse`'s arguments (its help text is the variant's).
#[derive(Debug, Clone, Args)]
pub struct RehearseArgs {
    /// Stop at this version (e.g. 202501010002)
    #[arg(value_name = "targetVersion")]
    pub target: Option<String>,
    /// Rehearse on this backup file instead of reading the database (no database is contacted)
    #[arg(long, value_name = "file")]
    pub from_backup: Option<String>,
    /// After the ups, run the downs back to the start and report every down that does not undo its up
    #[arg(long)]
    pub down: bool,
    /// Write the data as the migrations left it to this file, as a backup file (restorable, e.g. into staging)
    #[arg(long, value_name = "file")]
    pub keep: Option<String>,
    /// Example paths shown per migration
    #[arg(long, value_name = "N", default_value_t = crate::rehearse::DEFAULT_EXAMPLES)]
    pub examples: usize,
    /// Rehearse under this rules file (the rules about to be deployed; default: firebase.json's database rules when present, else the database's own)
    #[arg(long, value_name = "file")]
    pub rules: Option<String>,
    /// Warnings (queries that need an index, data the rules' .validate refuses) fail the rehearsal (exit 3)
    #[arg(long)]
    pub strict: bool,
}

/// How `migrate` and `down` wait for a lock another process holds.
#[derive(Debug, Clone, Copy, Args)]
pub struct WaitArgs {
    /// Fail at once when another process holds the lock (default: wait for it)
    #[arg(long)]
    pub no_wait: bool,
    /// Longest time to wait for the lock, in ms (default: locking.waitTimeout, else until the holder finishes or its lease expires)
    #[arg(long, value_name = "ms", value_parser = clap::value_parser!(u64).range(0..=2_147_483_647))]
    pub wait_timeout: Option<u64>,
}

#[derive(Debug, Clone, Subcommand)]
pub enum BackupCommand {
    /// Back up the shift subtree (the database root without a shift) to a JSON file
    Create,
    /// Replace the shift subtree with a backup file's data
    Restore {
        #[arg(value_name = "file")]
        file: String,
    },
    /// List backup files
    List,
}
