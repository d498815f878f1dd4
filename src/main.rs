//! `switchboard`: the command line. The binary's edge: errors become messages and exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use switchboard::config::{CONFIG_PATH_VAR, Config};
use switchboard::controller::telephony::TelephonySetup;
use switchboard::controller::{Controller, DurableRouter};
use switchboard::logging::{self, LogFormat};
use switchboard::model::Timestamp;
use switchboard::store::Store;

/// Switchboard: a contact-center control plane beside FreeSWITCH and Asterisk.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, long_about = None)]
struct Cli {
    /// Configuration file (default: ./switchboard.toml if it exists, else built-in defaults).
    #[arg(long, short, global = true, env = CONFIG_PATH_VAR)]
    config: Option<PathBuf>,
    /// Log format: human (default) or json; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    /// Log level or filter (e.g. `debug`, `switchboard=debug,info`); overrides `log.level`.
    #[arg(long, global = true)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the control plane: the store, the router and the HTTP API.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Check the configuration and print what it defines, then exit.
    Check,
    /// Simulate a contact-center day through the real router and print its figures.
    Simulate {
        /// The scenario file (see examples/).
        scenario: PathBuf,
        /// Seed of the day's random draws, instead of the scenario's `seed`.
        #[arg(long)]
        seed: Option<u64>,
        /// Simulate only the first HOURS of the day.
        #[arg(long, value_name = "HOURS")]
        hours: Option<f64>,
        /// Print the figures as JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Never show a progress bar.
        #[arg(long)]
        no_progress: bool,
    },
    /// Create the first administrator API key of a client, or the operator's first key, and
    /// print it (shown once).
    Keys {
        /// The client (tenant).
        #[arg(long, default_value = "default")]
        tenant: String,
        /// The operator's key instead: it creates clients and sets their trunk rules
        /// (/api/v1/clients) and reads none of their data.
        #[arg(long, conflicts_with = "tenant")]
        operator: bool,
    },
    /// Run an emulated media switch on its own, for trying Switchboard without one.
    Emulate {
        /// Which switch to emulate.
        #[command(subcommand)]
        switch: EmulatedSwitch,
    },
}

#[derive(Debug, Subcommand)]
enum EmulatedSwitch {
    /// FreeSWITCH's Event Socket (ESL), inbound connections on `--listen`.
    Freeswitch {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8021")]
        listen: std::net::SocketAddr,
        /// The Event Socket password.
        #[arg(long, default_value = "ClueCon")]
        password: String,
        /// Hand inbound calls to this outbound-socket server (the dialplan's `socket`), as
        /// host:port; without it they are parked and announced on inbound connections.
        #[arg(long)]
        outbound: Option<String>,
    },
    /// Asterisk's REST Interface (ARI): HTTP and the events WebSocket.
    Asterisk {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8088")]
        listen: std::net::SocketAddr,
        /// ARI user Switchboard logs in as.
        #[arg(long, default_value = "switchboard")]
        user: String,
        /// That user's password.
        #[arg(long, default_value = "switchboard")]
        password: String,
        /// The Stasis application inbound calls enter.
        #[arg(long, default_value = "switchboard")]
        app: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let default = Path::new("switchboard.toml");
        default.exists().then(|| default.to_path_buf())
    })
}

fn load_config(cli: &Cli) -> Result<Config> {
    let path = config_path(cli);
    Config::load(path.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn init_logging(cli: &Cli, config: &Config) -> Result<()> {
    let format = cli.log_format.unwrap_or(config.log.format);
    let level = cli
        .log_level
        .clone()
        .unwrap_or_else(|| config.log.level.clone());
    logging::init(format, &level).context("starting the logs")
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve => {
            let config = load_config(&cli)?;
            init_logging(&cli, &config)?;
            runtime()?.block_on(serve(config))
        }
        Command::Migrate => {
            let config = load_config(&cli)?;
            init_logging(&cli, &config)?;
            runtime()?.block_on(async {
                let store = Store::open_with(&config.store.url, config.store.max_connections)
                    .await
                    .context("opening the store")?;
                println!("schema up to date in {}", store.url());
                store.close().await;
                Ok(())
            })
        }
        Command::Simulate {
            ref scenario,
            seed,
            hours,
            json,
            no_progress,
        } => {
            let mut loaded =
                switchboard::sim::Scenario::load(scenario).map_err(|e| anyhow::anyhow!("{e}"))?;
            if let Some(hours) = hours {
                if !hours.is_finite() || hours <= 0.0 {
                    anyhow::bail!("--hours {hours}: expected a number of hours > 0");
                }
                loaded = loaded.first_hours(hours);
            }
            let options = switchboard::sim::RunOptions {
                progress: !no_progress && !json,
                seed,
            };
            let report =
                switchboard::sim::run(&loaded, &options).map_err(|e| anyhow::anyhow!("{e}"))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_json()).context("writing JSON")?
                );
            } else {
                print!("{report}");
            }
            Ok(())
        }
        Command::Keys {
            ref tenant,
            operator,
        } => {
            let config = load_config(&cli)?;
            init_logging(&cli, &config)?;
            runtime()?.block_on(async {
                let store = Store::open_with(&config.store.url, config.store.max_connections)
                    .await
                    .context("opening the store")?;
                let (token, whose) = if operator {
                    let token = switchboard::web::bootstrap_operator_key(&store)
                        .await
                        .context("creating the operator's key")?;
                    (token, "the operator".to_owned())
                } else {
                    let token = switchboard::web::bootstrap_admin_key(&store, tenant)
                        .await
                        .with_context(|| format!("creating an administrator key for {tenant}"))?;
                    (token, format!("an administrator of {tenant}"))
                };
                println!("{token}");
                eprintln!(
                    "a key for {whose}: keep it now, it is not shown again \
                     (send it as `Authorization: Bearer <key>`)"
                );
                store.close().await;
                Ok(())
            })
        }
        Command::Emulate { ref switch } => {
            init_logging(&cli, &Config::default())?;
            match switch {
                EmulatedSwitch::Freeswitch {
                    listen,
                    password,
                    outbound,
                } => {
                    use switchboard::emulator::freeswitch::{EmulatorOptions, run};
                    let options = match outbound {
                        Some(target) => EmulatorOptions::with_outbound(password, target),
                        None => EmulatorOptions::new(password),
                    };
                    runtime()?
                        .block_on(run(*listen, options))
                        .context("running the FreeSWITCH emulator")
                }
                EmulatedSwitch::Asterisk {
                    listen,
                    user,
                    password,
                    app,
                } => {
                    let options = switchboard::emulator::asterisk::EmulatorOptions::for_switchboard(
                        user, password, app,
                    );
                    runtime()?
                        .block_on(switchboard::emulator::asterisk::run(*listen, options))
                        .context("running the Asterisk emulator")
                }
            }
        }
        Command::Check => {
            let config = load_config(&cli)?;
            let resolved = config.resolve().map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "configuration OK ({}): {} queues, {} agents, store {}",
                config_path(&cli)
                    .map_or("built-in defaults".to_owned(), |p| p.display().to_string()),
                resolved.queues.len(),
                resolved.agents.len(),
                config.store.url
            );
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

async fn serve(config: Config) -> Result<()> {
    let resolved = config.resolve().map_err(|e| anyhow::anyhow!("{e}"))?;
    let listen = config
        .server
        .listen_addr()
        .with_context(|| format!("server.listen {:?}", config.server.listen))?;
    let store = Store::open_with(&config.store.url, config.store.max_connections)
        .await
        .context("opening the store")?;
    tracing::info!(store = store.url(), "store open, schema up to date");
    let (router, rebuilt) = DurableRouter::open(resolved.clone(), store.clone(), Timestamp::now())
        .await
        .context("rebuilding the queues")?;
    tracing::info!(
        waiting = rebuilt.waiting,
        connected = rebuilt.connected,
        dropped = rebuilt.dropped,
        customers = rebuilt.customers,
        "queues rebuilt from the store"
    );
    let (controller, task) = if resolved.handlers.is_empty() {
        tracing::info!("no [[handlers]] configured: routing only, no calls");
        Controller::spawn(router)
    } else {
        let setup = TelephonySetup::from_config(&resolved).context("starting the handlers")?;
        for h in &resolved.handlers {
            tracing::info!(handler = %h.id, name = h.name, kind = ?h.kind, address = h.address, "handler configured");
        }
        Controller::spawn_with_calls(router, setup)
    };
    let app = switchboard::web::router(controller, &resolved, store);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    tracing::info!(address = %listener.local_addr().unwrap_or(listen), "serving the HTTP API");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    let grace = std::time::Duration::from_secs(config.server.shutdown_grace_s);
    if tokio::time::timeout(grace, task.join()).await.is_err() {
        tracing::warn!(
            grace_s = grace.as_secs(),
            "the controller did not stop in time"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
