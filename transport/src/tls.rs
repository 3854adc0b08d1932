//! TLS for both transports: server identities (PEM files or a generated development certificate)
//! and client verification policies (system roots, extra CAs, pinned fingerprints, or none).

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// How long a generated development certificate is valid: under the 14 days browsers accept
/// for `serverCertificateHashes`.
pub const DEV_CERT_VALIDITY: time::Duration = time::Duration::days(13);

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// PEM text could not be parsed.
    #[error("PEM: {0}")]
    Pem(String),
    /// No certificate was found in the PEM input.
    #[error("no certificate found in PEM input")]
    NoCertificate,
    /// No private key was found in the PEM input.
    #[error("no private key found in PEM input")]
    NoPrivateKey,
    /// A fingerprint was not 32 bytes of hex.
    #[error("invalid SHA-256 fingerprint: {0}")]
    Fingerprint(String),
    /// Verification was asked for but there is no trusted root certificate.
    #[error("no trusted root certificates (none found on the system and no extra CA given)")]
    NoTrustAnchors,
    /// rustls rejected the configuration (e.g. the key does not match the certificate).
    #[error("rustls: {0}")]
    Rustls(#[from] rustls::Error),
    /// The development certificate could not be generated.
    #[error("certificate generation: {0}")]
    Generate(String),
}

/// The ring crypto provider every config in this crate uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A SHA-256 certificate fingerprint (of the DER encoding), as browsers pin them.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(cert: &[u8]) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, cert);
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Fingerprint(out)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = TlsError;

    /// Parses 64 hex digits; `:` separators and surrounding whitespace are allowed.
    fn from_str(s: &str) -> Result<Self, TlsError> {
        let cleaned: String = s.trim().chars().filter(|c| *c != ':').collect();
        let bytes = hex::decode(&cleaned).map_err(|_| TlsError::Fingerprint(s.to_string()))?;
        let arr: [u8; 32] = bytes
            .try_into()
            .map_err(|_| TlsError::Fingerprint(s.to_string()))?;
        Ok(Fingerprint(arr))
    }
}

/// A server's certificate chain and private key.
#[derive(Debug)]
pub struct ServerIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for ServerIdentity {
    fn clone(&self) -> Self {
        ServerIdentity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Parses every certificate in a PEM buffer.
pub fn parse_pem_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(certs)
}

impl ServerIdentity {
    /// Builds an identity from PEM text: a certificate chain (leaf first) and a private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, TlsError> {
        let chain = parse_pem_certs(cert_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoPrivateKey,
            other => TlsError::Pem(other.to_string()),
        })?;
        Ok(ServerIdentity { chain, key })
    }

    /// Loads a PEM certificate chain and a PEM private key from files.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        Self::from_pem(&read_file(cert)?, &read_file(key)?)
    }

    /// Generates a self-signed ECDSA P-256 development certificate for `localhost`, `127.0.0.1`
    /// and `::1`, valid for [`DEV_CERT_VALIDITY`]; logs its SHA-256 fingerprint.
    pub fn self_signed() -> Result<Self, TlsError> {
        Self::self_signed_for(&["localhost", "127.0.0.1", "::1"])
    }

    /// Generates a self-signed ECDSA P-256 certificate for these DNS names / IP addresses.
    pub fn self_signed_for(names: &[&str]) -> Result<Self, TlsError> {
        let gen = |e: rcgen::Error| TlsError::Generate(e.to_string());
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen)?;
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = rcgen::CertificateParams::new(names).map_err(gen)?;
        // Back-date a little for clock skew; the whole period stays under 14 days.
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = params.not_before + DEV_CERT_VALIDITY;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "moqlink development certificate");
        let cert = params.self_signed(&key).map_err(gen)?;
        let identity = ServerIdentity {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        };
        tracing::info!(
            fingerprint = %identity.fingerprint(),
            "generated self-signed development certificate (SHA-256 fingerprint)"
        );
        Ok(identity)
    }

    /// The chain and the key as PEM text (`CERTIFICATE` blocks; a `PRIVATE KEY`, `RSA PRIVATE
    /// KEY` or `EC PRIVATE KEY` block), e.g. to save a development certificate for other tools.
    pub fn to_pem(&self) -> (String, String) {
        let certs: Vec<pem::Pem> = self
            .chain
            .iter()
            .map(|c| pem::Pem::new("CERTIFICATE", c.as_ref()))
            .collect();
        let tag = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        let key = pem::Pem::new(tag, self.key.secret_der());
        (pem::encode_many(&certs), pem::encode(&key))
    }

    /// The certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The SHA-256 fingerprint of the leaf certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        // Constructors guarantee a non-empty chain.
        self.chain
            .first()
            .map(|c| Fingerprint::of(c))
            .unwrap_or(Fingerprint([0; 32]))
    }

    /// A TLS 1.3 rustls server config offering these ALPN protocols.
    pub fn server_config(&self, alpns: &[&[u8]]) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
        Ok(config)
    }
}

/// How a client verifies the server's certificate.
#[derive(Debug, Clone)]
pub enum ClientTls {
    /// Standard WebPKI verification against the system roots (if `system_roots`) plus the CA
    /// certificates in the `extra_ca` PEM files.
    Verify {
        /// Whether to trust the operating system's root certificates.
        system_roots: bool,
        /// PEM files with additional trusted CA certificates.
        extra_ca: Vec<PathBuf>,
    },
    /// Accept only a leaf certificate with one of these SHA-256 fingerprints; the handshake
    /// signature is still checked.
    Pinned(Vec<Fingerprint>),
    /// Accept any certificate (`--tls-disable-verify`). For tests and development only.
    DisableVerify,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls::Verify {
            system_roots: true,
            extra_ca: Vec::new(),
        }
    }
}

impl ClientTls {
    /// Builds the certificate verifier this policy describes (reads files now).
    pub fn verifier(&self) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
        let provider = provider();
        match self {
            ClientTls::Verify {
                system_roots,
                extra_ca,
            } => {
                let mut roots = RootCertStore::empty();
                if *system_roots {
                    let native = rustls_native_certs::load_native_certs();
                    for err in &native.errors {
                        tracing::debug!(%err, "loading system root certificates");
                    }
                    let (added, ignored) = roots.add_parsable_certificates(native.certs);
                    tracing::debug!(added, ignored, "system root certificates");
                }
                for path in extra_ca {
                    for cert in parse_pem_certs(&read_file(path)?)? {
                        roots.add(cert)?;
                    }
                }
                if roots.is_empty() {
                    return Err(TlsError::NoTrustAnchors);
                }
                let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))?;
                Ok(verifier)
            }
            ClientTls::Pinned(pins) => Ok(Arc::new(PinnedVerifier {
                pins: pins.clone(),
                provider,
            })),
            ClientTls::DisableVerify => Ok(Arc::new(NoVerifier { provider })),
        }
    }
}

/// A TLS 1.3 rustls client config with this verifier, offering one ALPN protocol.
pub fn client_config(
    verifier: Arc<dyn ServerCertVerifier>,
    alpn: &[u8],
) -> Result<rustls::ClientConfig, TlsError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// Accepts a leaf whose SHA-256 matches a pin, and checks the handshake signature with its key.
#[derive(Debug)]
struct PinnedVerifier {
    pins: Vec<Fingerprint>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got = Fingerprint::of(end_entity);
        if self.pins.contains(&got) {
            Ok(ServerCertVerified::assertion())
        } else {
            tracing::debug!(fingerprint = %got, "server certificate does not match any pin");
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Accepts every certificate and signature.
#[derive(Debug)]
struct NoVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for NoVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_parses_hex_with_colons() {
        let hex64 = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let a: Fingerprint = hex64.parse().unwrap();
        let with_colons: String = hex64
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(with_colons.parse::<Fingerprint>().unwrap(), a);
        assert_eq!(a.to_string(), hex64.to_lowercase());
        assert!("abcd".parse::<Fingerprint>().is_err());
        assert!("zz".repeat(32).parse::<Fingerprint>().is_err());
    }

    #[test]
    fn dev_cert_is_short_lived_and_loadable() {
        let id = ServerIdentity::self_signed().unwrap();
        assert_eq!(id.chain().len(), 1);
        assert_eq!(id.fingerprint(), Fingerprint::of(&id.chain()[0]));
        assert!(DEV_CERT_VALIDITY <= time::Duration::days(14));
        id.server_config(&[b"h3"]).unwrap();
        let (cert, key) = id.to_pem();
        let again = ServerIdentity::from_pem(cert.as_bytes(), key.as_bytes()).unwrap();
        assert_eq!(again.fingerprint(), id.fingerprint());
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(matches!(
            ServerIdentity::from_pem(b"nothing", b"nothing"),
            Err(TlsError::NoCertificate)
        ));
    }
}
