//! `HOST:PORT` arguments of the client subcommands (`connect`, `halfclose`, `framed`,
//! `heartbeat`, `upload`): the one parser of the binary.

/// Split `HOST:PORT` at its last `:` (`[::1]:8080` works too).
pub fn parse_target(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("'{s}': expected HOST:PORT"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("'{s}': empty host"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| format!("'{s}': port must be a number from 0 to 65535"))?;
    Ok((host.to_string(), port))
}

/// `host:port` for messages, the inverse of [`parse_target`]: an IPv6
/// address is bracketed (`[::1]:8080`), so the port stays readable.
pub fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_brackets_ipv6() {
        assert_eq!(host_port("::1", 8080), "[::1]:8080");
        assert_eq!(host_port("127.0.0.1", 80), "127.0.0.1:80");
        assert_eq!(host_port("localhost", 1), "localhost:1");
        let (h, p) = parse_target("[::1]:8080").unwrap();
        assert_eq!(host_port(&h, p), "[::1]:8080");
    }

    #[test]
    fn targets() {
        assert_eq!(parse_target("127.0.0.1:80"), Ok(("127.0.0.1".into(), 80)));
        assert_eq!(parse_target("[::1]:8080"), Ok(("::1".into(), 8080)));
        assert_eq!(parse_target("localhost:1"), Ok(("localhost".into(), 1)));
        assert!(parse_target("nohost").is_err());
        assert!(parse_target(":80").is_err());
        assert!(parse_target("h:99999").is_err());
    }

    /// The cases of the line client's former `parse_host_port` (now this parser).
    #[test]
    fn host_port_cases() {
        assert_eq!(
            parse_target("127.0.0.1:8080"),
            Ok(("127.0.0.1".into(), 8080))
        );
        assert_eq!(parse_target("[::1]:80"), Ok(("::1".into(), 80)));
        assert!(parse_target("h:").is_err());
        assert!(parse_target("h:port").is_err());
    }
}
