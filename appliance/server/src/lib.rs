//! The `nexus` binary's library half: configuration, TLS and boot, so the integration
//! tests start exactly what `nexus serve` starts.

pub mod config;
pub mod serve;
pub mod tls;

pub use config::Config;

#[cfg(test)]
mod boundaries;
