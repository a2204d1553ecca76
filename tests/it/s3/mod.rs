//! S3 against a real server (SeaweedFS): the client, the object store, the shared cache tier.

mod cache;
mod client;
mod listing;
mod open;
mod store;
mod warm_shard;
