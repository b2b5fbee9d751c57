//! The two types of `webpki` 0.22 that the `mysql` driver's TLS code names
//! (`mysql::error::tls::TlsError` wraps them), without webpki itself.
//!
//! Why: webpki 0.22 depends on `ring`, a C build, and the project builds
//! with no C compiler. Certificate checking is rustls' own (through
//! `rustls-webpki` and the graviola provider); the driver only converts an
//! invalid server name into `InvalidDnsNameError`, and never produces an
//! `Error` here, so these stand-ins carry no behaviour of their own.

use std::fmt;

/// webpki's certificate error; nothing in the driver creates one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The only variant: the certificate was refused.
    BadDer,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the certificate was refused ({self:?})")
    }
}

impl std::error::Error for Error {}

/// A server name that is not a valid DNS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidDnsNameError;

impl fmt::Display for InvalidDnsNameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid DNS name")
    }
}

impl std::error::Error for InvalidDnsNameError {}

#[cfg(test)]
mod tests {
    #[test]
    fn the_errors_say_what_they_are() {
        assert_eq!(super::InvalidDnsNameError.to_string(), "invalid DNS name");
        assert!(super::Error::BadDer.to_string().contains("refused"));
    }
}
