//! Writes the OpenAPI document to the path given (default `openapi/openapi.json`): `make openapi`.

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "openapi/openapi.json".into());
    std::fs::write(&path, backend::openapi::ApiDoc::json())?;
    eprintln!("wrote {path}");
    Ok(())
}
