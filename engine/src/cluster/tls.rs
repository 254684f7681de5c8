//! TLS for node-to-node traffic (`[cluster.tls]`): every node presents its
//! certificate and accepts only peers whose certificate the cluster's CA
//! signed, in both directions (mutual TLS), so the shared secret never
//! crosses the network in the clear.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::ClusterTlsConfig;
use crate::EngineError;

/// Both sides of a node's TLS, built once at start.
#[derive(Clone)]
pub(crate) struct NodeTls {
    pub(crate) acceptor: TlsAcceptor,
    pub(crate) connector: TlsConnector,
    pub(crate) server_name: ServerName<'static>,
}

fn problem(key: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError::Config(format!("cluster.tls.{key}: {e}"))
}

impl NodeTls {
    pub(crate) fn load(tls: &ClusterTlsConfig) -> Result<NodeTls, EngineError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&tls.cert_file)
            .map_err(|e| problem("cert_file", e))?
            .collect::<Result<_, _>>()
            .map_err(|e| problem("cert_file", e))?;
        if certs.is_empty() {
            return Err(problem("cert_file", "holds no certificate"));
        }
        let key =
            PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| problem("key_file", e))?;
        let mut roots = RootCertStore::empty();
        for ca in CertificateDer::pem_file_iter(&tls.ca_file).map_err(|e| problem("ca_file", e))? {
            roots
                .add(ca.map_err(|e| problem("ca_file", e))?)
                .map_err(|e| problem("ca_file", e))?;
        }
        if roots.is_empty() {
            return Err(problem("ca_file", "holds no certificate"));
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| problem("ca_file", e))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| problem("cert_file", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| problem("key_file", e))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| problem("cert_file", e))?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)
            .map_err(|e| problem("key_file", e))?;
        let server_name =
            ServerName::try_from(tls.server_name.clone()).map_err(|e| problem("server_name", e))?;
        Ok(NodeTls {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector: TlsConnector::from(Arc::new(client)),
            server_name,
        })
    }
}
