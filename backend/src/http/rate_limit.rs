//! Rate limits for the API: per client address on every `/api/v1` request ([`per_address`], a
//! middleware), per user once the caller is known (the `Caller` extractor), and tighter ones for
//! `POST /auth/login` (per address and per username) and `/auth/register` (per address).
//!
//! Counting: with `REDIS_URL` unset, in this process with `governor` (GCRA: `limit` at once, then
//! one more every `period / limit`). With Redis, one fixed-window counter per key shared by every
//! node (a Lua `INCR` + `PEXPIRE`), so ten nodes do not allow ten times the login attempts. When
//! Redis fails or is slow the local limiter decides for a while instead: a limit that is briefly
//! per node beats refusing every request because a counter is unreachable.
//!
//! Every response to a limited request carries `RateLimit-Limit`, `RateLimit-Remaining` and
//! `RateLimit-Reset` (seconds) for the tightest limit that applied; a 429 adds `Retry-After`.
//! Verdicts are collected in the request's extensions and written by [`per_address`] on the way out.
//!
//! The client address is the peer's, or, when the peer is one of `TRUSTED_PROXIES`, the
//! `X-Forwarded-For` entry that the trusted proxies received the request from.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpRequest, ResponseError};
use deadpool_redis::Pool;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use ipnet::IpNet;
use sha2::{Digest, Sha256};

use crate::config::{Rate, RateLimits};
use crate::error::ApiError;
use crate::state::State;

/// How long a Redis round trip may take before the local limiter decides instead.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);
/// After a Redis failure, how long the local limiter decides alone before Redis is tried again
/// (so an outage costs one timeout per this interval, not one per request).
const REDIS_RETRY_AFTER: Duration = Duration::from_secs(2);
/// How often keys that have recovered their whole quota are forgotten by the local limiters.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// `INCR` the window's counter, start the window on the first hit, and return the count and the
/// milliseconds left. The `PTTL < 0` branch repairs a key that lost its expiry (it never should).
const WINDOW_SCRIPT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}
";

pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Which limit a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// Every API request, by client address.
    PerAddress,
    /// Every authenticated API request, by user id.
    PerUser,
    /// `POST /auth/login`, by client address.
    LoginPerAddress,
    /// `POST /auth/login`, by the username tried (lowercased, as usernames are stored).
    LoginPerUsername,
    /// `POST /auth/register`, by client address.
    Register,
    /// `GET /users` (finding people), by user id: enough to find someone, not to list everyone.
    Lookups,
    /// Messages sent, by user id, over REST and every socket together.
    Sends,
}

impl Limit {
    const ALL: [Limit; 7] = [
        Limit::PerAddress,
        Limit::PerUser,
        Limit::LoginPerAddress,
        Limit::LoginPerUsername,
        Limit::Register,
        Limit::Lookups,
        Limit::Sends,
    ];

    fn name(self) -> &'static str {
        match self {
            Limit::PerAddress => "address",
            Limit::PerUser => "user",
            Limit::LoginPerAddress => "login_address",
            Limit::LoginPerUsername => "login_username",
            Limit::Register => "register_address",
            Limit::Lookups => "lookups_user",
            Limit::Sends => "sends_user",
        }
    }

    fn rate(self, rates: &RateLimits) -> Option<Rate> {
        match self {
            Limit::PerAddress => rates.per_address,
            Limit::PerUser => rates.per_user,
            Limit::LoginPerAddress => rates.login,
            Limit::LoginPerUsername => rates.login_username,
            Limit::Register => rates.register,
            Limit::Lookups => rates.lookups,
            Limit::Sends => rates.sends,
        }
    }
}

/// One decision, as the headers tell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests left in it.
    pub remaining: u32,
    /// Until the quota is whole again (allowed) or until the next request may pass (refused).
    pub reset: Duration,
}

impl Verdict {
    /// A refusal as the error both REST (429) and a socket (an `error` frame) answer with.
    pub fn refusal(self) -> Result<(), ApiError> {
        if self.allowed { Ok(()) } else { Err(ApiError::RateLimited { retry_after: self.reset }) }
    }

    /// The one the client must heed: a refusal, else the one with the fewest requests left.
    fn tighter(self, other: Verdict) -> Verdict {
        match (self.allowed, other.allowed) {
            (false, true) => self,
            (true, false) => other,
            _ if other.remaining < self.remaining => other,
            _ => self,
        }
    }

    fn write_headers(&self, headers: &mut HeaderMap) {
        let reset = whole_seconds(self.reset);
        headers.insert(RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RATELIMIT_RESET, HeaderValue::from(reset));
        if !self.allowed {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(reset.max(1)));
        }
    }
}

/// Seconds, rounded up: a client that waits this long is let through.
fn whole_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// The tightest verdict of a request so far, kept in its extensions.
#[derive(Clone, Copy)]
struct Tightest(Verdict);

type LocalLimiter = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock, StateInformationMiddleware>;

/// One limit's rate and its in-process counters.
struct Bucket {
    limit: Limit,
    rate: Rate,
    local: LocalLimiter,
}

impl Bucket {
    fn new(limit: Limit, rate: Rate) -> Bucket {
        // `period / limit` is zero only for absurd rates (over 10^9 a second): then no limit bites.
        let interval = (rate.period / rate.limit).max(Duration::from_nanos(1));
        // Unwrap: the interval is not zero, and `Rate::parse` never yields a zero limit.
        let burst = NonZeroU32::new(rate.limit).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(interval).expect("a non-zero interval").allow_burst(burst);
        Bucket { limit, rate, local: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>() }
    }

    fn check_local(&self, key: &str) -> Verdict {
        let limit = self.rate.limit;
        match self.local.check_key(&key.to_owned()) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity().min(limit);
                let reset = (self.rate.period / limit) * (limit - remaining);
                Verdict { allowed: true, limit, remaining, reset }
            }
            Err(not_until) => {
                let reset = not_until.wait_time_from(self.local.clock().now());
                Verdict { allowed: false, limit, remaining: 0, reset }
            }
        }
    }
}

/// The node's limits: what `RATE_LIMIT_*` switched on, counted locally or in Redis.
pub struct RateLimitService {
    buckets: Vec<Bucket>,
    trusted_proxies: Vec<IpNet>,
    redis: Option<Pool>,
    /// Until when Redis is skipped after a failure.
    redis_down_until: Mutex<Option<Instant>>,
}

impl RateLimitService {
    /// Must be called within a Tokio runtime: it starts the task that forgets idle keys.
    pub fn new(rates: &RateLimits, trusted_proxies: Vec<IpNet>, redis: Option<Pool>) -> std::sync::Arc<Self> {
        let buckets = Limit::ALL.iter().filter_map(|&l| l.rate(rates).map(|rate| Bucket::new(l, rate))).collect();
        let service = std::sync::Arc::new(RateLimitService {
            buckets,
            trusted_proxies,
            redis,
            redis_down_until: Mutex::new(None),
        });
        let weak = std::sync::Arc::downgrade(&service);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(FORGET_EVERY);
            loop {
                tick.tick().await;
                let Some(service) = weak.upgrade() else { return };
                for bucket in &service.buckets {
                    bucket.local.retain_recent();
                    bucket.local.shrink_to_fit();
                }
            }
        });
        service
    }

    /// The address a request is counted by (see the module doc).
    pub fn client_address(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        client_address(peer, headers, &self.trusted_proxies)
    }

    /// Counts one request against `limit` for `key`; `None` when that limit is off. A refusal is counted in
    /// `http_rate_limited_total{limit}`, whichever path asked (a socket's `send` as well as REST).
    pub async fn check(&self, limit: Limit, key: &str) -> Option<Verdict> {
        let verdict = self.count(limit, key).await?;
        if !verdict.allowed {
            metrics::counter!("http_rate_limited_total", "limit" => limit.name()).increment(1);
        }
        Some(verdict)
    }

    /// The verdict on one more request: from the counter shared in Redis, else this node's own.
    async fn count(&self, limit: Limit, key: &str) -> Option<Verdict> {
        let bucket = self.buckets.iter().find(|b| b.limit == limit)?;
        // Hashed: usernames come from the request body (any length, anything), and need not sit
        // in Redis in the clear.
        let digest = Sha256::digest(key.as_bytes());
        let key = format!(
            "{}:{}",
            limit.name(),
            base64::Engine::encode(&base64::prelude::BASE64_URL_SAFE_NO_PAD, &digest[..16])
        );
        if let Some(verdict) = self.check_redis(bucket, &key).await {
            return Some(verdict);
        }
        Some(bucket.check_local(&key))
    }

    /// The shared counter, or `None` when Redis is not configured or does not answer in time.
    async fn check_redis(&self, bucket: &Bucket, key: &str) -> Option<Verdict> {
        let pool = self.redis.as_ref()?;
        {
            // Unwrap-free: a poisoned lock only means another request panicked mid-update.
            let mut down = self.redis_down_until.lock().unwrap_or_else(|p| p.into_inner());
            match *down {
                Some(until) if Instant::now() < until => return None,
                Some(_) => *down = None,
                None => {}
            }
        }
        let period_ms = bucket.rate.period.as_millis().max(1) as u64;
        let window = async {
            let mut conn = pool.get().await.map_err(|e| e.to_string())?;
            // Plain EVAL (the `script` feature's EVALSHA would add a dependency for ~200 bytes a
            // request); Redis caches the compiled script by its hash either way.
            redis::cmd("EVAL")
                .arg(WINDOW_SCRIPT)
                .arg(1)
                .arg(format!("chat:ratelimit:{key}"))
                .arg(period_ms)
                .query_async::<(u64, i64)>(&mut conn)
                .await
                .map_err(|e| e.to_string())
        };
        let outcome = match tokio::time::timeout(REDIS_TIMEOUT, window).await {
            Ok(Ok(counted)) => Ok(counted),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {REDIS_TIMEOUT:?}")),
        };
        match outcome {
            Ok((count, ttl_ms)) => {
                let limit = bucket.rate.limit;
                let allowed = count <= u64::from(limit);
                let remaining = u64::from(limit).saturating_sub(count) as u32;
                Some(Verdict { allowed, limit, remaining, reset: Duration::from_millis(ttl_ms.max(0) as u64) })
            }
            Err(e) => {
                metrics::counter!("rate_limit_redis_failures_total").increment(1);
                tracing::warn!("rate limits fall back to this node's counters for {REDIS_RETRY_AFTER:?}: Redis: {e}");
                *self.redis_down_until.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now() + REDIS_RETRY_AFTER);
                None
            }
        }
    }

    /// Counts `req` against `limit` for `key` and remembers the verdict for the response headers:
    /// 429 `rate_limited` when the limit is reached.
    pub async fn enforce(&self, req: &HttpRequest, limit: Limit, key: &str) -> Result<(), ApiError> {
        let Some(verdict) = self.check(limit, key).await else { return Ok(()) };
        remember(&mut req.extensions_mut(), verdict);
        verdict.refusal()
    }

    /// [`enforce`](Self::enforce) keyed by the request's client address.
    pub async fn enforce_per_address(&self, req: &HttpRequest, limit: Limit) -> Result<(), ApiError> {
        let address = self.client_address(req.peer_addr(), req.headers());
        self.enforce(req, limit, &address_key(address)).await
    }
}

/// The key an address is counted under: IPv4 as it is; IPv6 by its /64, the block one customer gets
/// (else a client could take a fresh quota from each of its 2^64 addresses). A request without a peer
/// address (a Unix socket, a test harness) shares one key.
fn address_key(address: Option<IpAddr>) -> String {
    match address.map(unmapped) {
        None => "unknown".to_owned(),
        Some(IpAddr::V4(v4)) => v4.to_string(),
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// An IPv4 client seen through a dual-stack socket (`::ffff:a.b.c.d`) as the IPv4 address it is, so
/// IPv4 `TRUSTED_PROXIES` blocks and IPv4 keys apply to it.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn remember(extensions: &mut actix_web::dev::Extensions, verdict: Verdict) {
    let tightest = match extensions.get::<Tightest>() {
        Some(Tightest(seen)) => seen.tighter(verdict),
        None => verdict,
    };
    extensions.insert(Tightest(tightest));
}

/// The peer, or the address the trusted proxies say they were reached from: walking
/// `X-Forwarded-For` from the nearest hop, past every trusted proxy, the first other entry. For
/// nginx setting the header to `$remote_addr` (deploy/nginx.conf) that is its only, first hop; for
/// proxies that append, a client's own made-up entries on the left are never reached.
pub fn client_address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let mut address = unmapped(peer?.ip());
    let is_trusted = |a: &IpAddr| trusted.iter().any(|net| net.contains(a));
    if !is_trusted(&address) {
        return Some(address);
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(hop) = hop.parse::<IpAddr>() else { break };
        address = unmapped(hop);
        if !is_trusted(&address) {
            break;
        }
    }
    Some(address)
}

/// The middleware on `/api/v1`: counts each request against its client address, refuses it with
/// 429 past the limit, and writes the `RateLimit-*` headers of the tightest verdict that applied
/// (this one, the user's, login's) on every response.
pub async fn per_address<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let state = req.app_data::<State>().cloned();
    if let Some(state) = &state {
        let (http_req, payload) = req.into_parts();
        let refused = state.limits.enforce_per_address(&http_req, Limit::PerAddress).await.err();
        let req = ServiceRequest::from_parts(http_req, payload);
        if let Some(error) = refused {
            let mut response = error.error_response();
            if let Some(Tightest(verdict)) = req.extensions().get::<Tightest>() {
                verdict.write_headers(response.headers_mut());
            }
            return Ok(req.into_response(response).map_into_right_body());
        }
        let mut response = next.call(req).await?;
        let tightest = response.request().extensions().get::<Tightest>().copied();
        if let Some(Tightest(verdict)) = tightest {
            verdict.write_headers(response.headers_mut());
        }
        return Ok(response.map_into_left_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some(other)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "192.0.2.7");
        assert_eq!(address_key(None), "unknown");
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let peer: SocketAddr = "[::ffff:10.1.2.3]:443".parse().unwrap();
        assert_eq!(
            client_address(Some(peer), &headers(&["198.51.100.9"]), &trusted),
            Some("198.51.100.9".parse().unwrap()),
            "a mapped IPv4 proxy address matches an IPv4 trusted block"
        );
    }

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in xff {
            map.append(HeaderName::from_static("x-forwarded-for"), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().unwrap(), 40000))
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // An untrusted peer: its header is ignored.
        assert_eq!(client_address(peer("203.0.113.9"), &headers(&["1.2.3.4"]), &trusted), ip("203.0.113.9"));
        // nginx replacing the header: the one hop.
        assert_eq!(client_address(peer("10.0.0.2"), &headers(&["198.51.100.7"]), &trusted), ip("198.51.100.7"));
        // Proxies appending: the client's own made-up entry on the left is not reached.
        let chain = headers(&["6.6.6.6, 198.51.100.7", "10.0.0.3"]);
        assert_eq!(client_address(peer("10.0.0.2"), &chain, &trusted), ip("198.51.100.7"));
        // A trusted peer without the header, or with garbage: the peer.
        assert_eq!(client_address(peer("10.0.0.2"), &headers(&[]), &trusted), ip("10.0.0.2"));
        assert_eq!(client_address(peer("10.0.0.2"), &headers(&["nonsense"]), &trusted), ip("10.0.0.2"));
        // No trusted proxies (the default): always the peer.
        assert_eq!(client_address(peer("10.0.0.2"), &headers(&["1.2.3.4"]), &[]), ip("10.0.0.2"));
    }

    #[tokio::test]
    async fn the_local_limiter_counts_down_then_refuses() {
        let rates = RateLimits { login_username: Some(Rate::per_minute(3)), ..RateLimits::off() };
        let service = RateLimitService::new(&rates, Vec::new(), None);
        let seen: Vec<Verdict> = {
            let mut v = Vec::new();
            for _ in 0..4 {
                v.push(service.check(Limit::LoginPerUsername, "alice").await.unwrap());
            }
            v
        };
        assert_eq!(seen.iter().map(|v| v.remaining).collect::<Vec<_>>(), [2, 1, 0, 0]);
        assert!(seen[..3].iter().all(|v| v.allowed && v.limit == 3));
        assert!(!seen[3].allowed);
        assert!(seen[3].reset > Duration::from_secs(15) && seen[3].reset <= Duration::from_secs(20), "{:?}", seen[3]);
        // Another key, and a limit that is off.
        assert!(service.check(Limit::LoginPerUsername, "bob").await.unwrap().allowed);
        assert_eq!(service.check(Limit::PerUser, "1").await, None);
    }

    #[test]
    fn the_tighter_verdict_wins() {
        let ok = |remaining| Verdict { allowed: true, limit: 10, remaining, reset: Duration::ZERO };
        let refused = Verdict { allowed: false, limit: 10, remaining: 0, reset: Duration::from_secs(3) };
        assert_eq!(ok(5).tighter(ok(2)), ok(2));
        assert_eq!(ok(0).tighter(refused), refused);
        assert_eq!(refused.tighter(ok(0)), refused);
    }
}
