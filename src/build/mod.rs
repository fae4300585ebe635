//! Placeholder: neighbor graphs from embeddings (issue 3).
