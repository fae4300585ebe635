//! [`NeighborConfig`]: how many neighbors each sample keeps, the one setting a [`NeighborTable`]
//! is built with.
//!
//! It is stated once: graph regularization holds it
//! ([`GraphRegConfig::neighbors`](crate::regularize::GraphRegConfig::neighbors), the `neighbors=`
//! key of `--graph-reg`), the run builds its tables from it, and the trainer takes the number of
//! neighbors per sample from the table it is given.
//!
//! [`NeighborTable`]: super::NeighborTable

use crate::config::ConfigError;
use serde::{Deserialize, Serialize};

/// The neighbors each sample keeps. `Default` keeps 1 (NSL's `max_neighbors` defaults to 0, graph
/// regularization off; here a graph regularizer without neighbors is refused instead).
///
/// Serialized as the bare number (`"max_neighbors": 2` inside a graph regularizer's JSON), so the
/// files that record it read as before it had a type of its own.
///
/// ```
/// use nsl::neighbors::NeighborConfig;
/// let config = NeighborConfig { max_neighbors: 3 };
/// assert!(config.validate().is_ok());
/// assert_eq!(NeighborConfig::from(3), config);
/// assert!(NeighborConfig { max_neighbors: 0 }.validate().is_err());
/// assert_eq!(serde_json::to_string(&config).unwrap(), "3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NeighborConfig {
    /// Neighbors per sample, best weight first (ties to the larger id, as NSL). Default 1.
    /// A [`NeighborTable`](super::NeighborTable) takes 0 (no neighbors: `nsl pack-nbrs
    /// --max-neighbors 0` writes the samples alone); [`validate`](Self::validate), which training
    /// calls, refuses it.
    pub max_neighbors: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig { max_neighbors: 1 }
    }
}

/// `max_neighbors` neighbors per sample (candle-nn's `From<f64>` for the common case).
impl From<usize> for NeighborConfig {
    fn from(max_neighbors: usize) -> Self {
        NeighborConfig { max_neighbors }
    }
}

impl NeighborConfig {
    /// Checks the value for training.
    ///
    /// # Errors
    /// [`ConfigError::InvalidValue`] naming `neighbors` if `max_neighbors` is 0: a graph term
    /// without a single neighbor is always 0.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_neighbors == 0 {
            return Err(ConfigError::invalid("neighbors", 0, "at least 1 neighbor per sample"));
        }
        Ok(())
    }
}
