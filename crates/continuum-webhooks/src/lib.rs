//! Webhooks: the delivery of a tenant's events to the URLs it subscribed, signed as the
//! Standard Webhooks specification says (so receivers' existing libraries verify them).
//!
//! - [`sign`]: the signature scheme (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//! - [`target`]: where a webhook may point: http(s) only, and never (unless the operator
//!   allows it) a private, loopback, link-local or metadata address, checked when a
//!   subscription is made and again at every attempt, after name resolution, with redirects
//!   not followed.
//! - [`deliver`]: the delivery job: in order per subscription, retried on a schedule with
//!   jitter, dead-lettered when every attempt failed, a subscription disabled when it has
//!   failed for too long.
//! - [`stripe`]: the inbound side of billing: Stripe's webhooks verified (`Stripe-Signature`)
//!   and read as tier changes.

pub mod deliver;
pub mod sign;
pub mod stripe;
pub mod target;

pub use deliver::{Deliverer, DeliveryConfig};
pub use target::check_target;
