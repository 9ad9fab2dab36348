//! The browser app (`STATIC_DIR`, built by trunk) at `/`.
//!
//! - `index.html` for `/` and for every path without a file extension (the app's own routes, so a deep
//!   link such as `/rooms/5` works), never cached: it names the current build's assets.
//! - Assets whose names carry trunk's content hash (`frontend-1a2b…_bg.wasm`) are cached for a year,
//!   `immutable`: a new build has new names. Anything else revalidates.
//! - A missing asset is a 404, not `index.html`: a stale tab asking for an old bundle must fail loudly.
//! - `index.html` gets a Content-Security-Policy that lets this app run and nothing else: scripts only
//!   from this origin plus trunk's inline loader, which carries a nonce made fresh for every response
//!   (trunk's `create_nonce` writes the placeholder this module replaces), WebAssembly compilation, no
//!   inline styles, no framing.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_files::Files;
use actix_web::dev::{ServiceRequest, ServiceResponse, fn_service};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, ResponseError, body::MessageBody, web};
use base64::Engine;
use rand::RngCore;

use crate::error::ApiError;

/// What trunk writes into `nonce="…"` with `create_nonce = true`.
const NONCE_PLACEHOLDER: &str = "{{__TRUNK NONCE__}}";
/// Long enough that a year-old tab is still served from its cache.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The built app: where its files are and its `index.html`, read once at start-up.
#[derive(Clone)]
pub struct Spa {
    dir: PathBuf,
    index: Arc<str>,
}

impl Spa {
    /// Reads `dir/index.html`; a `STATIC_DIR` without one is a configuration error.
    pub fn load(dir: &Path) -> io::Result<Spa> {
        let index = std::fs::read_to_string(dir.join("index.html"))?;
        Ok(Spa { dir: dir.to_path_buf(), index: index.into() })
    }

    /// The routes: `/` and `/index.html`, then the files, then `index.html` for the app's own paths.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let index = self.index.clone();
        let fallback = self.index.clone();
        cfg.app_data(web::Data::new(index.clone()))
            .route("/", web::get().to(serve_index))
            .route("/index.html", web::get().to(serve_index))
            .service(web::scope("").wrap(from_fn(cache_headers)).service(Files::new("/", &self.dir).default_handler(
                fn_service(move |req: ServiceRequest| {
                    let index = fallback.clone();
                    async move {
                        let (req, _) = req.into_parts();
                        let resp = if has_extension(req.path()) {
                            let missing = format!("Nothing is at {}.", req.path());
                            ApiError::not_found("not_found", missing).error_response()
                        } else {
                            index_response(&index)
                        };
                        Ok(ServiceResponse::new(req, resp))
                    }
                }),
            )));
    }
}

async fn serve_index(index: web::Data<Arc<str>>) -> HttpResponse {
    index_response(&index)
}

/// `index.html` with a fresh nonce and the policy that names it.
fn index_response(index: &str) -> HttpResponse {
    let nonce = new_nonce();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, content_security_policy(&nonce)))
        .body(index.replace(NONCE_PLACEHOLDER, &nonce))
}

pub fn content_security_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Cache headers for the files: a year for content-hashed names, revalidation for the rest.
async fn cache_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let hashed = is_content_hashed(req.path());
    let mut resp = next.call(req).await?;
    if resp.status().is_success() && !resp.headers().contains_key(header::CACHE_CONTROL) {
        let value = if hashed { IMMUTABLE } else { "no-cache" };
        resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    Ok(resp)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn has_extension(path: &str) -> bool {
    file_name(path).contains('.')
}

/// trunk names a build's assets `<name>-<16 hex digits>[_bg].<ext>`.
fn is_content_hashed(path: &str) -> bool {
    let stem = file_name(path).split('.').next().unwrap_or("");
    let stem = stem.strip_suffix("_bg").unwrap_or(stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_trunks_hashed_names() {
        assert!(is_content_hashed("/frontend-9f86d081884c7d65_bg.wasm"));
        assert!(is_content_hashed("/frontend-9f86d081884c7d65.js"));
        assert!(is_content_hashed("/style-0123456789abcdef.css"));
        assert!(!is_content_hashed("/index.html"));
        assert!(!is_content_hashed("/favicon.ico"));
        assert!(!is_content_hashed("/my-file.js"));
    }

    #[test]
    fn app_routes_have_no_extension() {
        assert!(!has_extension("/rooms/5"));
        assert!(has_extension("/frontend-1.js"));
    }
}
