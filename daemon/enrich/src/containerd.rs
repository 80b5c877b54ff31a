//! Container metadata from containerd's gRPC API (the `containerd-client` crate).
//!
//! For a container id: the containers service's `Get` (labels, image, OCI spec annotations,
//! creation time), the same for the pod's sandbox container (the pod's labels), and the images
//! service's `Get` (the image's target digest). The connection is made on first use and
//! dropped after any failure, so the next call reconnects: a containerd restart costs the
//! calls made while it is down, nothing more.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::{Container, GetContainerRequest, GetImageRequest};
use containerd_client::tonic::{self, metadata::MetadataValue, transport::Channel, Code};
use saker_event::ContainerMeta;
use tokio::sync::Mutex;

use crate::cgroup::{ContainerRef, Runtime};
use crate::error::EnrichError;
use crate::meta::{self, Record, ANNOTATION_SANDBOX_ID};

/// containerd's default socket.
pub const DEFAULT_SOCKET: &str = "/run/containerd/containerd.sock";
/// The containerd namespace of Kubernetes (CRI) containers.
pub const K8S_NAMESPACE: &str = "k8s.io";
/// The containerd namespace of Docker's containers.
pub const DOCKER_NAMESPACE: &str = "moby";

/// Where and how to reach containerd.
#[derive(Clone, Debug)]
pub struct ContainerdConfig {
    /// gRPC unix socket.
    pub socket: PathBuf,
    /// Namespace of containers whose runtime is containerd or unknown.
    pub namespace: String,
    /// Namespace of containers whose cgroup says Docker (Docker runs on containerd).
    pub docker_namespace: String,
    /// Deadline of the connection and of each call.
    pub timeout: Duration,
}

impl Default for ContainerdConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::from(DEFAULT_SOCKET),
            namespace: K8S_NAMESPACE.to_owned(),
            docker_namespace: DOCKER_NAMESPACE.to_owned(),
            timeout: Duration::from_secs(2),
        }
    }
}

/// A lazily connected containerd client. Cheap to share (`Arc`); calls may run concurrently.
pub struct ContainerdClient {
    config: ContainerdConfig,
    channel: Mutex<Option<Channel>>,
}

impl ContainerdClient {
    /// Does not connect: the first call does.
    pub fn new(config: ContainerdConfig) -> Self {
        Self {
            config,
            channel: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &ContainerdConfig {
        &self.config
    }

    /// The metadata of `container`; `Ok(None)` when containerd does not know it (or it is not
    /// a containerd/Docker container: cri-o and podman are not asked).
    pub async fn container_meta(
        &self,
        container: &ContainerRef,
    ) -> Result<Option<ContainerMeta>, EnrichError> {
        let namespace = match container.runtime {
            Runtime::Containerd | Runtime::Unknown => &self.config.namespace,
            Runtime::Docker => &self.config.docker_namespace,
            Runtime::Crio | Runtime::Podman => return Ok(None),
        };
        let result = self.fetch(container, namespace).await;
        if result.is_err() {
            // Reconnect on the next call (containerd may have restarted).
            *self.channel.lock().await = None;
        }
        result
    }

    async fn fetch(
        &self,
        container: &ContainerRef,
        namespace: &str,
    ) -> Result<Option<ContainerMeta>, EnrichError> {
        let channel = self.channel().await?;
        let Some(c) = self
            .get_container(&channel, namespace, &container.id)
            .await?
        else {
            return Ok(None);
        };
        let annotations = c
            .spec
            .as_ref()
            .map(|spec| meta::spec_annotations(&spec.value))
            .unwrap_or_default();
        let sandbox_id = annotations
            .get(ANNOTATION_SANDBOX_ID)
            .filter(|s| !s.is_empty())
            .cloned()
            .or_else(|| Some(c.sandbox.clone()).filter(|s| !s.is_empty()));
        let sandbox_labels = match sandbox_id {
            Some(sandbox) if sandbox != c.id => self
                .get_container(&channel, namespace, &sandbox)
                .await?
                .map(|s| s.labels)
                .unwrap_or_default(),
            _ => Default::default(),
        };
        let image_digest = if c.image.is_empty() {
            None
        } else {
            self.image_digest(&channel, namespace, &c.image).await?
        };
        let runtime = match container.runtime {
            Runtime::Unknown => Runtime::Containerd,
            r => r,
        };
        Ok(Some(meta::build(Record {
            id: c.id,
            runtime: runtime.as_str().to_owned(),
            labels: c.labels,
            annotations,
            sandbox_labels,
            image: c.image,
            image_digest,
            created_at: c.created_at.map(|t| (t.seconds, t.nanos)),
            cgroup_pod_uid: container.pod_uid.clone(),
        })))
    }

    async fn get_container(
        &self,
        channel: &Channel,
        namespace: &str,
        id: &str,
    ) -> Result<Option<Container>, EnrichError> {
        let mut client = ContainersClient::new(channel.clone());
        let request = self.request(GetContainerRequest { id: id.to_owned() }, namespace)?;
        not_found_is_none(self.call("containers.Get", client.get(request)).await)
            .map(|r| r.and_then(|r| r.into_inner().container))
    }

    async fn image_digest(
        &self,
        channel: &Channel,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, EnrichError> {
        let mut client = ImagesClient::new(channel.clone());
        let request = self.request(
            GetImageRequest {
                name: name.to_owned(),
            },
            namespace,
        )?;
        let response = not_found_is_none(self.call("images.Get", client.get(request)).await)?;
        Ok(response
            .and_then(|r| r.into_inner().image?.target)
            .map(|t| t.digest)
            .filter(|d| !d.is_empty()))
    }

    async fn channel(&self) -> Result<Channel, EnrichError> {
        let mut slot = self.channel.lock().await;
        if let Some(channel) = slot.as_ref() {
            return Ok(channel.clone());
        }
        let socket = self.config.socket.clone();
        let channel = tokio::time::timeout(
            self.config.timeout,
            containerd_client::connect(socket.clone()),
        )
        .await
        .map_err(|_| EnrichError::Timeout {
            what: "connecting to containerd",
            after: self.config.timeout,
        })?
        .map_err(|source| EnrichError::Connect { socket, source })?;
        *slot = Some(channel.clone());
        Ok(channel)
    }

    fn request<T>(&self, message: T, namespace: &str) -> Result<tonic::Request<T>, EnrichError> {
        let ns = MetadataValue::try_from(namespace)
            .map_err(|_| EnrichError::InvalidNamespace(namespace.to_owned()))?;
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("containerd-namespace", ns);
        Ok(request)
    }

    async fn call<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<tonic::Response<T>, EnrichError> {
        tokio::time::timeout(self.config.timeout, call)
            .await
            .map_err(|_| EnrichError::Timeout {
                what,
                after: self.config.timeout,
            })?
            .map_err(|status| EnrichError::Rpc {
                what,
                status: Box::new(status),
            })
    }
}

fn not_found_is_none<T>(result: Result<T, EnrichError>) -> Result<Option<T>, EnrichError> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(EnrichError::Rpc { status, .. }) if status.code() == Code::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}
