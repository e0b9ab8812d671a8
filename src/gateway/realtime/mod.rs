//! `GET /v1/realtime?model=…`: the WebSocket proxy (placeholder while the parts land).

pub mod check;
pub mod inspect;
