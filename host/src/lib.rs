//! Warrant: the authentication and authorization core of a workspace and file platform used by
//! people and AI agents. Every action needs a warrant: one decision pipeline, explainable, fast.
//!
//! Data flows one way: transport ([`api`]) → [`service`] → [`authz`] + [`store`] / [`files`].

pub mod api;
pub mod authz;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod error;
pub mod files;
pub mod identity;
pub mod mcp;
pub mod oauth;
pub mod ratelimit;
pub mod service;
pub mod store;

pub use error::{Error, Result};
