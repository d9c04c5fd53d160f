//! Small helpers for reading and building binary nodes.
//!
//! Used by every protocol module; stateless. Reading helpers never panic on
//! odd input — a missing attribute is just `None`.

use std::borrow::Cow;

use wacore_binary::{Jid, Node, NodeContent, NodeValue, Server};

/// The server's own JID (`s.whatsapp.net`).
pub(crate) fn server_jid() -> Jid {
    Jid::new("", Server::Pn)
}

pub(crate) fn attr(n: &Node, key: &str) -> Option<String> {
    n.attrs.get(key).map(|v| v.as_str().into_owned())
}

pub(crate) fn attr_jid(n: &Node, key: &str) -> Option<Jid> {
    n.attrs.get(key).and_then(NodeValue::to_jid)
}

pub(crate) fn child<'a>(n: &'a Node, tag: &str) -> Option<&'a Node> {
    n.get_optional_child(tag)
}

pub(crate) fn children(n: &Node) -> &[Node] {
    n.children().unwrap_or(&[])
}

/// Content as bytes (strings count too: the encoder may pick either).
pub(crate) fn bytes(n: &Node) -> Option<&[u8]> {
    match &n.content {
        Some(NodeContent::Bytes(b)) => Some(b),
        Some(NodeContent::String(s)) => Some(s.as_bytes()),
        _ => None,
    }
}

pub(crate) fn text(n: &Node) -> Option<String> {
    bytes(n).map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A node builder that accepts runtime tag names and string keys.
pub(crate) struct B(Node);

impl B {
    pub(crate) fn new(tag: impl Into<Cow<'static, str>>) -> Self {
        B(Node {
            tag: tag.into(),
            ..Node::default()
        })
    }

    pub(crate) fn a(mut self, key: impl Into<Cow<'static, str>>, v: impl Into<NodeValue>) -> Self {
        self.0.attrs.insert(key, v);
        self
    }

    pub(crate) fn kids(mut self, kids: impl IntoIterator<Item = Node>) -> Self {
        self.0.content = Some(NodeContent::Nodes(kids.into_iter().collect()));
        self
    }

    pub(crate) fn bytes(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.0.content = Some(NodeContent::Bytes(b.into()));
        self
    }

    /// String content (the client parses some enum-valued nodes, such as
    /// `<member_add_mode>`, only from string content, not from bytes).
    pub(crate) fn text(mut self, s: impl Into<String>) -> Self {
        self.0.content = Some(NodeContent::String(s.into().into()));
        self
    }

    pub(crate) fn from_node(n: Node) -> Self {
        B(n)
    }

    pub(crate) fn peek(&self) -> &Node {
        &self.0
    }

    pub(crate) fn build(self) -> Node {
        self.0
    }
}

/// `<iq type="result" id=.. from=..>` answering `req`.
pub(crate) fn iq_result(req: &Node, kids: Vec<Node>) -> Node {
    let from = attr_jid(req, "to")
        .filter(|j| !j.user.is_empty())
        .unwrap_or_else(server_jid);
    let b = B::new("iq")
        .a("from", from)
        .a("type", "result")
        .a("id", attr(req, "id").unwrap_or_default());
    if kids.is_empty() {
        b.build()
    } else {
        b.kids(kids).build()
    }
}

/// `<iq type="error"><error code text/></iq>` answering `req`.
pub(crate) fn iq_error(req: &Node, code: u16, text: &str) -> Node {
    let from = attr_jid(req, "to")
        .filter(|j| !j.user.is_empty())
        .unwrap_or_else(server_jid);
    B::new("iq")
        .a("from", from)
        .a("type", "error")
        .a("id", attr(req, "id").unwrap_or_default())
        .kids([B::new("error")
            .a("code", code.to_string())
            .a("text", text.to_string())
            .build()])
        .build()
}

pub(crate) fn pn_jid(phone: &str, device: u16) -> Jid {
    if device == 0 {
        Jid::pn(phone)
    } else {
        Jid::pn_device(phone, device)
    }
}

pub(crate) fn lid_jid(lid: &str, device: u16) -> Jid {
    if device == 0 {
        Jid::lid(lid)
    } else {
        Jid::lid_device(lid, device)
    }
}

/// Display form of a device JID, e.g. `15550001111:1@s.whatsapp.net`.
pub(crate) fn device_jid_string(phone: &str, device: u16) -> String {
    pn_jid(phone, device).to_string()
}
