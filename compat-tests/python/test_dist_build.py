"""The shipped build is the `dist` cargo profile, without the mock-network feature.

Issue 16 item 8 (binary ≤ 25 MB) is met by a cargo profile, not by flags typed by hand, so
what ships must be built with it: docker/Dockerfile's build stage runs
`cargo build --profile dist -p wharf` and copies `target/dist/wharf`, the README's build
instructions say the same, and the profile in Cargo.toml is the one README "Benchmarks →
Binary size" measured (whole-program LTO, one codegen unit, dependencies at opt-level
"s", the crypto crates at 3, unwinding panics).

The other half — that a default-feature build refuses `WHARF_WA_URL` — is checked on a
real binary by .ci/run; cargo resolves features the same way in every profile, so this
file checks that the Dockerfile selects the package and features that check builds
(`-p wharf`, no `--features`, no `--workspace`). No binary or Docker daemon is needed.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
CARGO_TOML = REPO / "Cargo.toml"
README = REPO / "README.md"

SHIPPED_PROFILE = "dist"
# Crates on the per-message path (Noise frames, the Signal ratchet, hashes and MACs): the
# size profile must not trade their speed away.
HOT_CRATES = [
    "wacore-noise",
    "wacore-libsignal",
    "curve25519-dalek",
    "x25519-dalek",
    "aes",
    "ghash",
    "sha2",
    "hmac",
]


def dockerfile_build(text: str) -> tuple[list[str], str]:
    """The build stage's cargo arguments and the path the runtime stage copies from it."""
    # Join continuation lines, then find the single `RUN … cargo build …`.
    logical = re.sub(r"\\\n\s*", " ", text)
    builds = [
        line for line in logical.splitlines() if line.startswith("RUN ") and "cargo build" in line
    ]
    assert len(builds) == 1, f"expected one `RUN cargo build` in the Dockerfile: {builds}"
    words = shlex.split(builds[0][len("RUN ") :])
    start = words.index("cargo")
    end = words.index("&&", start) if "&&" in words[start:] else len(words)
    args = words[start + 2 : end]
    copies = re.findall(r"^COPY --from=build /src/(\S+) /usr/local/bin/wharf$", text, re.M)
    assert len(copies) == 1, "the runtime stage copies exactly one binary from the build stage"
    return args, copies[0]


def check_dockerfile(text: str) -> None:
    args, copied = dockerfile_build(text)
    assert "--release" not in args, f"ships the bench profile, not {SHIPPED_PROFILE}: {args}"
    assert "--profile" in args, args
    assert args[args.index("--profile") + 1] == SHIPPED_PROFILE, args
    assert "-p" in args and args[args.index("-p") + 1] == "wharf", args
    for flag in ("--features", "-F", "--all-features", "--workspace", "--all"):
        assert not any(a == flag or a.startswith(flag + "=") for a in args), (
            f"{flag} in the shipped build: features must be wharf's defaults ({args})"
        )
    assert copied == f"target/{SHIPPED_PROFILE}/wharf", copied


def test_dockerfile_builds_the_dist_profile_without_features():
    check_dockerfile(DOCKERFILE.read_text())


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("--profile dist -p wharf", "--release -p wharf"),
        ("--profile dist -p wharf", "--profile dist -p wharf --features mock-network"),
        ("--profile dist -p wharf", "--profile dist --workspace"),
        ("/src/target/dist/wharf", "/src/target/release/wharf"),
    ],
)
def test_dockerfile_check_catches_a_wrong_build(old, new):
    text = DOCKERFILE.read_text()
    assert old in text
    with pytest.raises(AssertionError):
        check_dockerfile(text.replace(old, new))


def test_dist_profile_is_the_measured_one():
    cargo = tomllib.loads(CARGO_TOML.read_text())
    assert cargo["features"]["default"] == [], "mock-network must never be a default feature"
    profiles = cargo["profile"]
    assert profiles["release"].get("strip") is True
    dist = profiles[SHIPPED_PROFILE]
    assert dist["inherits"] == "release"
    assert dist["lto"] == "fat"
    assert dist["codegen-units"] == 1
    # Session tasks rely on unwinding: a panic in one must not abort the process.
    assert dist.get("panic", "unwind") == "unwind"
    assert profiles["release"].get("panic", "unwind") == "unwind"
    packages = dist["package"]
    assert packages["*"]["opt-level"] == "s"
    for crate in HOT_CRATES:
        assert packages[crate]["opt-level"] == 3, crate


def test_readme_builds_and_measures_the_dist_profile():
    text = README.read_text()
    run = text.split("\n## Run\n", 1)[1].split("\n## ", 1)[0]
    assert "cargo build --profile dist -p wharf" in run
    assert "cargo build --release -p wharf" not in run
    security = text.split("\n## Security of the build\n", 1)[1].split("\n## ", 1)[0]
    assert "--profile dist -p wharf" in security
    assert "\n### Binary size\n" in text and "[profile.dist]" in text
