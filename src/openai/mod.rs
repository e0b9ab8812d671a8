//! The OpenAI wire format: the lingua franca of kt. Every provider translates to and from
//! these types; the gateway, policies and `kt chat` speak only these.
//!
//! Unknown fields are kept (`extra`) so a request is passed through without losing what a
//! newer SDK sent.

mod accumulate;
pub mod audio;
mod de;
pub mod embeddings;
pub mod error;
pub mod responses;
pub mod splice;
pub mod types;

pub use accumulate::{join_function_call, StreamAccumulator};
pub use de::AsSent;
pub use error::{ApiError, ErrorBody};
pub use types::*;
