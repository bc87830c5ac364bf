//! The clients of the `netloop` binary: the interactive line client
//! (`netloop connect`, seed 05) and the half-close demo client
//! (`netloop halfclose`, seed 08), both on our own loop.

pub mod backoff;
pub mod editor;
pub mod halfclose;
pub mod interactive;
pub mod stdin;

/// Split `HOST:PORT` (`[v6]:PORT` for IPv6 literals).
pub fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("{s:?}: {port:?} is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?}: empty host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(
            parse_host_port("127.0.0.1:8080"),
            Ok(("127.0.0.1".into(), 8080))
        );
        assert_eq!(parse_host_port("[::1]:80"), Ok(("::1".into(), 80)));
        assert_eq!(parse_host_port("localhost:1"), Ok(("localhost".into(), 1)));
        assert!(parse_host_port("nohost").is_err());
        assert!(parse_host_port("h:99999").is_err());
        assert!(parse_host_port(":80").is_err());
    }
}
