//! The `linekeeper` command: a thin shell over the library. Exit codes: 0 success, 2 bad usage or bad
//! configuration, 1 any other failure.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use linekeeper::config::{Config, ConfigError};
use linekeeper::outputs::control::{self, Format, Request, What};

#[derive(Parser)]
#[command(
    name = "linekeeper",
    version,
    about = "Contact-center appliance: caller-ID line to call log, callback tasks, MQTT and a web API"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Configuration file [default: $LINEKEEPER_CONFIG, else /etc/linekeeper/linekeeper.toml]
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

impl ConfigArg {
    fn path(&self) -> PathBuf {
        self.config
            .clone()
            .or_else(|| std::env::var_os("LINEKEEPER_CONFIG").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("/etc/linekeeper/linekeeper.toml"))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Run(ConfigArg),
    /// Run the whole product on an embedded default with a simulated caller-ID modem.
    Demo {
        /// Address of the web page and API.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// MQTT broker used when it answers.
        #[arg(long, default_value = "127.0.0.1")]
        mqtt_host: String,
        /// Port of that MQTT broker.
        #[arg(long, default_value_t = 1883)]
        mqtt_port: u16,
        /// Play the simulated calls this many times faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// Validate the configuration and print every problem with its key.
    CheckConfig(ConfigArg),
    /// Print a report (the stored one, or one built now from the store).
    Report {
        kind: KindArg,
        /// A day in the period (YYYY-MM-DD, site time) [default: today].
        #[arg(long)]
        date: Option<String>,
        #[arg(long, value_enum, default_value = "json")]
        format: Format,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Set a new random password for a web page user (printed once; it must be changed at the next login).
    /// Signs that user out. With no users yet, creates USER as an admin.
    Passwd {
        user: String,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Write calls or tasks to stdout.
    Export {
        what: What,
        /// First day (YYYY-MM-DD, site time) or RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Last day, included (YYYY-MM-DD) or RFC 3339 time (excluded).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "csv")]
        format: Format,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KindArg {
    Shift,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
}

impl From<KindArg> for linekeeper::report::ReportKind {
    fn from(k: KindArg) -> Self {
        use linekeeper::report::ReportKind;
        match k {
            KindArg::Shift => ReportKind::Shift,
            KindArg::Daily => ReportKind::Daily,
            KindArg::Weekly => ReportKind::Weekly,
            KindArg::Monthly => ReportKind::Monthly,
            KindArg::Quarterly => ReportKind::Quarterly,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Viewer,
    Agent,
    Supervisor,
    Admin,
}

impl From<RoleArg> for linekeeper::model::Role {
    fn from(r: RoleArg) -> Self {
        use linekeeper::model::Role;
        match r {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Agent => Role::Agent,
            RoleArg::Supervisor => Role::Supervisor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

#[derive(Subcommand)]
enum TokenAction {
    /// Create an API token; prints only the token.
    Create {
        name: String,
        /// What the token may do: viewer (reads only), agent, supervisor or admin.
        #[arg(long, value_enum, default_value = "viewer")]
        role: RoleArg,
        #[command(flatten)]
        config: ConfigArg,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Loads the configuration or says what is wrong (exit 2).
fn load(path: &Path) -> Result<Config, ExitCode> {
    match Config::load(path) {
        Ok(c) => Ok(c),
        Err(ConfigError::Invalid { problems }) => {
            eprintln!(
                "{}: the configuration has {} problem(s):",
                path.display(),
                problems.len()
            );
            for p in problems {
                eprintln!("  {p}");
            }
            Err(ExitCode::from(2))
        }
        Err(e) => {
            eprintln!("{e}");
            Err(ExitCode::from(2))
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per core); with tokio's threads
/// that is several megabytes of high water on a 512 MB board. Two arenas are plenty for this daemon. (Measured with
/// lkbench: peak RSS with 100,000 calls stored 36 MB -> 32 MB, and less with the fixed mmap threshold.)
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; called first thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // A fixed threshold: large short-lived buffers (API answers, report reads) go back to the system when freed,
        // instead of glibc raising the threshold and keeping them in the heap.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig(c) => {
            let path = c.path();
            match load(&path) {
                Ok(cfg) => {
                    println!(
                        "{}: valid ({} line(s), MQTT {})",
                        path.display(),
                        cfg.lines.len(),
                        if cfg.mqtt.is_some() { "on" } else { "off" }
                    );
                    ExitCode::SUCCESS
                }
                Err(code) => code,
            }
        }
        Command::Run(c) => {
            let path = c.path();
            let cfg = match load(&path) {
                Ok(cfg) => cfg,
                Err(code) => return code,
            };
            init_logging();
            let opts = linekeeper::runtime::daemon::RunOptions {
                config_path: Some(path),
                ..Default::default()
            };
            let result = runtime().map_err(anyhow::Error::from).and_then(|rt| {
                rt.block_on(linekeeper::runtime::daemon::run(
                    cfg,
                    opts,
                    linekeeper::runtime::daemon::signals(),
                ))
                .map_err(anyhow::Error::from)
            });
            finish(result)
        }
        Command::Demo {
            listen,
            mqtt_host,
            mqtt_port,
            speed,
        } => {
            if !(speed > 0.0 && speed <= 1000.0) {
                eprintln!("--speed must be more than 0 and at most 1000");
                return ExitCode::from(2);
            }
            init_logging();
            let o = linekeeper::demo::DemoOptions {
                listen,
                mqtt_host,
                mqtt_port,
                speed,
            };
            finish(
                runtime()
                    .map_err(anyhow::Error::from)
                    .and_then(|rt| rt.block_on(linekeeper::demo::demo(o))),
            )
        }
        Command::Token {
            action: TokenAction::Create { name, role, config },
        } => control_command(
            &config,
            &Request::TokenCreate {
                name,
                role: Some(role.into()),
            },
        ),
        Command::Passwd { user, config } => control_command(&config, &Request::Passwd { user }),
        Command::Report {
            kind,
            date,
            format,
            config,
        } => control_command(
            &config,
            &Request::Report {
                kind: kind.into(),
                date,
                format,
            },
        ),
        Command::Export {
            what,
            from,
            to,
            format,
            config,
        } => control_command(
            &config,
            &Request::Export {
                what,
                from,
                to,
                format,
            },
        ),
    }
}

fn control_command(config: &ConfigArg, req: &Request) -> ExitCode {
    let cfg = match load(&config.path()) {
        Ok(cfg) => cfg,
        Err(code) => return code,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match control::run_request(&cfg, req, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ control::ControlError::Usage(_)) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn finish(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linekeeper: {e:#}");
            ExitCode::FAILURE
        }
    }
}
