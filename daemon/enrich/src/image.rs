//! Image references: `[host[:port]/]path[:tag][@digest]`.

/// The parts of an image reference as run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageRef {
    /// Everything before the tag and digest, registry host (and port) included, e.g.
    /// `docker.io/library/busybox` or `localhost:5000/team/app`.
    pub repository: String,
    pub tag: Option<String>,
    /// `algorithm:hex` after `@`, e.g. `sha256:…`.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Splits a reference. The tag is what follows the last `:` after the last `/`, so a
    /// registry port is never mistaken for a tag. Never fails: garbage gives a repository
    /// holding the garbage.
    pub fn parse(image: &str) -> Self {
        let image = image.trim();
        let (name, digest) = match image.split_once('@') {
            Some((name, digest)) => (name, non_empty(digest)),
            None => (image, None),
        };
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name.rfind(':') {
            Some(colon) if colon >= last_slash => (
                name.get(..colon).unwrap_or(name),
                name.get(colon + 1..).and_then(non_empty),
            ),
            _ => (name, None),
        };
        Self {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        }
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(image: &str) -> (String, Option<String>, Option<String>) {
        let r = ImageRef::parse(image);
        (r.repository, r.tag, r.digest)
    }

    fn p(
        repo: &str,
        tag: Option<&str>,
        digest: Option<&str>,
    ) -> (String, Option<String>, Option<String>) {
        (
            repo.to_owned(),
            tag.map(str::to_owned),
            digest.map(str::to_owned),
        )
    }

    #[test]
    fn forms() {
        let d = "sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7";
        assert_eq!(
            parts("localhost/busybox:latest"),
            p("localhost/busybox", Some("latest"), None)
        );
        assert_eq!(
            parts("docker.io/library/busybox:1.36"),
            p("docker.io/library/busybox", Some("1.36"), None)
        );
        assert_eq!(parts("busybox"), p("busybox", None, None));
        assert_eq!(
            parts("localhost:5000/team/app"),
            p("localhost:5000/team/app", None, None)
        );
        assert_eq!(
            parts("localhost:5000/team/app:v1.2"),
            p("localhost:5000/team/app", Some("v1.2"), None)
        );
        assert_eq!(
            parts(&format!("quay.io/app@{d}")),
            p("quay.io/app", None, Some(d))
        );
        assert_eq!(
            parts(&format!("registry:443/app:v1@{d}")),
            p("registry:443/app", Some("v1"), Some(d))
        );
        assert_eq!(parts(" app:1 "), p("app", Some("1"), None));
    }

    #[test]
    fn garbage() {
        assert_eq!(parts(""), p("", None, None));
        assert_eq!(parts(":"), p("", None, None));
        assert_eq!(parts("@"), p("", None, None));
        assert_eq!(parts("a:"), p("a", None, None));
        assert_eq!(parts("a@"), p("a", None, None));
        assert_eq!(parts("é:€@𝄞"), p("é", Some("€"), Some("𝄞")));
        assert_eq!(parts("//::@@"), p("//:", None, Some("@")));
    }
}
