//! The federation's certificate authority, and the mutual TLS built on it.
//!
//! Every key here is Ed25519. The CA's key signs node certificates and unlimited-access
//! grants ([`crate::access::SignedGrant`]); each node's certificate carries the node's own
//! Ed25519 key, the one it signs envelopes with, so the node id the TLS handshake proves
//! ([`node_of_certificate`]) is the id its messages must name. A node is issued a
//! certificate for its public key only: its private key never leaves it.
//!
//! [`server_config`] requires a client certificate that chains to the CA and whose node is not
//! revoked (checked during the handshake, so a revoked node never gets a connection);
//! `anonymous` lets a client without a certificate in, for the one exchange that needs it
//! (joining with a token), and the application must then refuse everything else.

use crate::Error;
use crate::identity::{NodeId, NodeKey, hex};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// How long the CA's certificate is valid.
pub const CA_VALID_DAYS: u64 = 3650;
/// How long a node certificate is valid unless asked otherwise.
pub const NODE_VALID_DAYS: u64 = 365;

/// PKCS#8 v1 for an Ed25519 seed (RFC 8410): a fixed prefix, then the 32 bytes.
fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

fn key_pair(key: &NodeKey) -> Result<rcgen::KeyPair, Error> {
    let der = PrivatePkcs8KeyDer::from(pkcs8(&key.seed()));
    rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, &rcgen::PKCS_ED25519)
        .map_err(|e| Error::Internal(format!("the Ed25519 key: {e}")))
}

/// A node's public key, for a certificate it is issued.
struct PublicEd25519([u8; 32]);

impl rcgen::PublicKeyData for PublicEd25519 {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ED25519
    }
}

fn ca_params(name: &str) -> Result<rcgen::CertificateParams, Error> {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new())
        .map_err(|e| Error::Internal(e.to_string()))?;
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("Continuum federation {name} CA"),
    );
    p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    p.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    Ok(p)
}

fn check_name(name: &str) -> Result<(), Error> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(Error::Malformed(
            "a federation name is 1 to 64 letters, digits, '-', '_' or '.'".into(),
        ));
    }
    Ok(())
}

/// The federation's certificate authority: its name, key and self-signed certificate.
pub struct Authority {
    name: String,
    key: NodeKey,
    cert_pem: String,
}

impl Authority {
    /// A new CA named `name` (1 to 64 of `[A-Za-z0-9._-]`) with `key`, valid from an hour
    /// before `now` (clock skew) for [`CA_VALID_DAYS`].
    pub fn create(name: &str, key: NodeKey, now: SystemTime) -> Result<Authority, Error> {
        check_name(name)?;
        let mut p = ca_params(name)?;
        p.not_before = (now - Duration::from_secs(3600)).into();
        p.not_after = (now + Duration::from_secs(CA_VALID_DAYS * 86_400)).into();
        let cert = p
            .self_signed(&key_pair(&key)?)
            .map_err(|e| Error::Internal(format!("making the CA certificate: {e}")))?;
        Ok(Authority {
            name: name.to_string(),
            key,
            cert_pem: cert.pem(),
        })
    }

    /// A CA kept from before: its certificate must hold `key`'s public half.
    pub fn open(name: &str, key: NodeKey, cert_pem: &str) -> Result<Authority, Error> {
        check_name(name)?;
        let der = first_certificate(cert_pem)?;
        if public_key_of(&der)? != key.public().to_bytes() {
            return Err(Error::Malformed(
                "the CA certificate does not belong to this CA key".into(),
            ));
        }
        Ok(Authority {
            name: name.to_string(),
            key,
            cert_pem: cert_pem.to_string(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's key: it signs node certificates and grants.
    pub fn key(&self) -> &NodeKey {
        &self.key
    }

    /// A certificate for the node holding `node`'s private key, for client and server
    /// authentication, naming it by its node id and, for a node that accepts connections, by
    /// the DNS names or IP addresses in `names`.
    pub fn issue(
        &self,
        node: &ed25519_dalek::VerifyingKey,
        names: &[String],
        valid_days: u64,
        now: SystemTime,
    ) -> Result<String, Error> {
        if valid_days == 0 || valid_days > CA_VALID_DAYS {
            return Err(Error::Malformed(format!(
                "a node certificate is valid for 1 to {CA_VALID_DAYS} days"
            )));
        }
        let mut p = rcgen::CertificateParams::new(names.to_vec())
            .map_err(|e| Error::Malformed(format!("the node's names: {e}")))?;
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, NodeId::of(node).to_string());
        p.is_ca = rcgen::IsCa::ExplicitNoCa;
        p.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        ];
        p.use_authority_key_identifier_extension = true;
        p.not_before = (now - Duration::from_secs(3600)).into();
        p.not_after = (now + Duration::from_secs(valid_days * 86_400)).into();
        let ca_key = key_pair(&self.key)?;
        let issuer = rcgen::Issuer::new(ca_params(&self.name)?, ca_key);
        let cert = p
            .signed_by(&PublicEd25519(node.to_bytes()), &issuer)
            .map_err(|e| Error::Internal(format!("signing the node certificate: {e}")))?;
        Ok(cert.pem())
    }
}

/// The DER of the first certificate in a PEM text.
pub fn first_certificate(pem: &str) -> Result<CertificateDer<'static>, Error> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| Error::Malformed("no PEM certificate".into()))?
        .map_err(|e| Error::Malformed(format!("a PEM certificate: {e}")))
}

/// SHA-256 of a PEM text's first certificate, hex: how a join token names the CA to trust.
pub fn fingerprint(pem: &str) -> Result<String, Error> {
    Ok(hex(&Sha256::digest(first_certificate(pem)?.as_ref())))
}

/// The Ed25519 public key a certificate is for.
fn public_key_of(der: &[u8]) -> Result<[u8; 32], Error> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| Error::Malformed(format!("not an X.509 certificate: {e}")))?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    // id-Ed25519, RFC 8410.
    if spki.algorithm.oid.to_string() != "1.3.101.112" {
        return Err(Error::Malformed(
            "the certificate's key is not an Ed25519 key".into(),
        ));
    }
    spki.subject_public_key
        .as_bytes()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| Error::Malformed("an Ed25519 public key is 32 bytes".into()))
}

/// When the first certificate of a PEM text stops being valid, in Unix milliseconds.
pub fn not_after(pem: &str) -> Result<i64, Error> {
    Ok(validity(pem)?.1)
}

/// From when and until when the first certificate of a PEM text is valid, in Unix
/// milliseconds.
pub fn validity(pem: &str) -> Result<(i64, i64), Error> {
    use x509_cert::der::Decode;
    let der = first_certificate(pem)?;
    let cert = x509_cert::Certificate::from_der(der.as_ref())
        .map_err(|e| Error::Malformed(format!("not an X.509 certificate: {e}")))?;
    let v = &cert.tbs_certificate.validity;
    Ok((
        v.not_before.to_unix_duration().as_millis() as i64,
        v.not_after.to_unix_duration().as_millis() as i64,
    ))
}

/// A node renews its certificate once this little of it remains, or a third of its
/// lifetime for a shorter one.
pub const RENEW_BEFORE_DAYS: i64 = 30;

/// Whether a certificate valid from `not_before` to `not_after` is due for renewal at `now`
/// (all Unix milliseconds): when at most [`RENEW_BEFORE_DAYS`], or a third of its lifetime,
/// whichever is less, remains.
pub fn renewal_due(not_before: i64, not_after: i64, now: i64) -> bool {
    let lifetime = (not_after - not_before).max(0);
    let window = (RENEW_BEFORE_DAYS * 86_400_000).min(lifetime / 3);
    not_after - now <= window
}

/// The node a certificate is for: the id of the Ed25519 key it certifies.
pub fn node_of_certificate(der: &[u8]) -> Result<(NodeId, ed25519_dalek::VerifyingKey), Error> {
    let raw = public_key_of(der)?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&raw)
        .map_err(|_| Error::Malformed("not a valid Ed25519 public key".into()))?;
    Ok((NodeId::of(&key), key))
}

/// The node on the other end of a TLS connection, when it presented a certificate.
pub fn peer_node(conn: &rustls::CommonState) -> Option<NodeId> {
    let cert = conn.peer_certificates()?.first()?;
    node_of_certificate(cert.as_ref()).ok().map(|(id, _)| id)
}

/// Revoked nodes, shared with the TLS verifier: a change applies to the next handshake.
#[derive(Debug, Default)]
pub struct Revocations(RwLock<HashSet<NodeId>>);

impl Revocations {
    pub fn new(ids: impl IntoIterator<Item = NodeId>) -> Arc<Revocations> {
        Arc::new(Revocations(RwLock::new(ids.into_iter().collect())))
    }

    pub fn revoke(&self, id: NodeId) {
        if let Ok(mut s) = self.0.write() {
            s.insert(id);
        }
    }

    pub fn is_revoked(&self, id: &NodeId) -> bool {
        // A poisoned lock refuses: never let a revoked node in by accident.
        self.0.read().map(|s| s.contains(id)).unwrap_or(true)
    }
}

/// The CA's certificate checks, then the node's revocation.
#[derive(Debug)]
struct MemberVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Arc<Revocations>,
}

impl ClientCertVerifier for MemberVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        let (node, _) = node_of_certificate(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self.revoked.is_revoked(&node) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(ok)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn roots(ca_pem: &str) -> Result<Arc<rustls::RootCertStore>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(first_certificate(ca_pem)?)
        .map_err(|e| Error::Malformed(format!("the CA certificate: {e}")))?;
    Ok(Arc::new(roots))
}

fn identity(
    cert_pem: &str,
    key: &NodeKey,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    use rustls::pki_types::pem::PemObject;
    // The node's certificate first; any after it (the hub sends its CA) go along.
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Malformed(format!("a PEM certificate: {e}")))?;
    let first = chain
        .first()
        .ok_or_else(|| Error::Malformed("no PEM certificate".into()))?;
    let (_, certified) = node_of_certificate(first.as_ref())?;
    if certified != key.public() {
        return Err(Error::Malformed(
            "the node certificate is not for this node's key".into(),
        ));
    }
    Ok((
        chain,
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8(&key.seed()))),
    ))
}

/// TLS for a node that accepts federation connections: it presents `cert_pem` (issued for
/// `key`) and requires a client certificate from the CA of a node not revoked; with
/// `anonymous`, a client without a certificate is let in too (see the module).
pub fn server_config(
    ca_pem: &str,
    cert_pem: &str,
    key: &NodeKey,
    revoked: Arc<Revocations>,
    anonymous: bool,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let builder =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider());
    let builder = if anonymous {
        builder.allow_unauthenticated()
    } else {
        builder
    };
    let inner = builder
        .build()
        .map_err(|e| Error::Internal(format!("the client verifier: {e}")))?;
    let (chain, private) = identity(cert_pem, key)?;
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Internal(format!("TLS settings: {e}")))?
        .with_client_cert_verifier(Arc::new(MemberVerifier { inner, revoked }))
        .with_single_cert(chain, private)
        .map_err(|e| Error::Malformed(format!("the node certificate and key: {e}")))?;
    Ok(Arc::new(config))
}

/// TLS for a node connecting to another: it trusts only the federation's CA and presents its
/// own certificate (none for joining, which is authorised by a token instead).
pub fn client_config(
    ca_pem: &str,
    own: Option<(&str, &NodeKey)>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Internal(format!("TLS settings: {e}")))?
        .with_root_certificates(roots(ca_pem)?);
    let config = match own {
        Some((cert_pem, key)) => {
            let (chain, private) = identity(cert_pem, key)?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| Error::Malformed(format!("the node certificate and key: {e}")))?
        }
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_certificate_names_its_key_and_the_ca_opens_again() {
        let now = SystemTime::now();
        let ca = Authority::create("acme", NodeKey::from_seed(&[1; 32]), now).unwrap();
        let node = NodeKey::from_seed(&[2; 32]);
        let pem = ca
            .issue(&node.public(), &["localhost".into()], 30, now)
            .unwrap();
        let (id, key) = node_of_certificate(first_certificate(&pem).unwrap().as_ref()).unwrap();
        assert_eq!((&id, key), (node.id(), node.public()));
        // Reopened from its parts; refused with another key.
        Authority::open("acme", NodeKey::from_seed(&[1; 32]), ca.cert_pem()).unwrap();
        assert!(Authority::open("acme", NodeKey::from_seed(&[3; 32]), ca.cert_pem()).is_err());
        assert!(Authority::create("bad name!", NodeKey::from_seed(&[1; 32]), now).is_err());
        assert!(ca.issue(&node.public(), &[], 0, now).is_err());
        assert_eq!(fingerprint(ca.cert_pem()).unwrap().len(), 64);
        // Validity: an hour back for skew, 30 days ahead; renewal due in its last 10 days.
        let (from, until) = validity(&pem).unwrap();
        let now_ms = now
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert!((now_ms - from - 3_600_000).abs() < 2_000, "{from}");
        assert!((until - now_ms - 30 * 86_400_000).abs() < 2_000, "{until}");
        assert!(!renewal_due(from, until, now_ms));
        assert!(!renewal_due(from, until, until - 11 * 86_400_000));
        assert!(renewal_due(
            from,
            until,
            until - 10 * 86_400_000 + 3_600_000
        ));
        // A year's certificate: due in its last 30 days.
        let year = 365 * 86_400_000;
        assert!(!renewal_due(0, year, year - 31 * 86_400_000));
        assert!(renewal_due(0, year, year - 30 * 86_400_000));
        // A certificate is only usable with the key it was issued for.
        assert!(client_config(ca.cert_pem(), Some((&pem, &NodeKey::from_seed(&[4; 32])))).is_err());
    }
}
