"""The repository documents itself: no tracked file points at documents a user of the repository
never has, every relative link in its markdown leads to a file that exists, and every key the
configuration loader reads is in the configuration reference (docs/configuration.md).

No peers here; it reads the checkout (the files git tracks, or every file outside build/ when the
tree is not a git checkout)."""

import os
import re
import shutil
import subprocess
import unittest

import lab

# Written in pieces so that this file does not match itself.
FORBIDDEN = ["../" + "shared", "SPEC" + ".md", "STYLE" + ".md", "PEERS" + ".md"]
SKIPPED_DIRS = {".git", "build"}


def tracked_files(root):
    """Paths (relative to root) of the files git tracks, or of every file outside build/."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z"], capture_output=True,
                             timeout=30, check=True).stdout
        files = [p for p in out.decode("utf-8", "replace").split("\0") if p]
        if files:
            return files
    except (OSError, subprocess.SubprocessError):
        pass
    files = []
    for directory, subdirs, names in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIPPED_DIRS]
        files += [os.path.relpath(os.path.join(directory, n), root) for n in names]
    return files


def forbidden_mentions(root, files):
    """[(path, line number, name)] for every forbidden name in the text of `files`."""
    found = []
    for relative in files:
        path = os.path.join(root, relative)
        if not os.path.isfile(path):
            continue  # deleted in the work tree, not yet committed
        with open(path, "rb") as f:
            data = f.read()
        if b"\0" in data[:8192]:
            continue  # binary
        for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            found += [(relative, number, name) for name in FORBIDDEN if name in line]
    return found


# [text](target) in markdown; images too. Targets with a scheme or an anchor only are skipped.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(root, files):
    broken = []
    for relative in files:
        if not relative.endswith(".md"):
            continue
        path = os.path.join(root, relative)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        for target in LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            file_part = target.split("#", 1)[0]
            resolved = os.path.normpath(os.path.join(os.path.dirname(path), file_part))
            inside = resolved == root or resolved.startswith(root + os.sep)
            if not inside or not os.path.exists(resolved):
                broken.append((relative, target))
    return broken


def loader_keys(root):
    """Every table and key name config/config_loader.cpp reads (read("x"), read_enum("x", ...),
    read_table("x"), the timeouts' {"x", &field} pairs...)."""
    with open(os.path.join(root, "config", "config_loader.cpp")) as f:
        source = f.read()
    return (set(re.findall(r'\bread\w*\(\s*"(\w+)"', source))
            | set(re.findall(r'std::pair\{"(\w+)"', source)))


def undocumented(keys, reference):
    """The keys neither written as `key` in the reference nor part of a [table] name in it."""
    tables = set()
    for header in re.findall(r"\[\[?([\w.]+)\]", reference):
        tables.update(header.split("."))
    return sorted(k for k in keys if f"`{k}`" not in reference and k not in tables)


class SelfContainedTest(unittest.TestCase):
    root = os.path.realpath(lab.SOURCE_DIR)

    def test_no_tracked_file_points_outside_the_repository(self):
        found = forbidden_mentions(self.root, tracked_files(self.root))
        self.assertEqual(found, [], "these cite documents outside the repository; say the fact "
                         "in place or cite a file inside it (docs/, README.md, an RFC)")

    def test_the_check_sees_a_mention(self):
        # The scan itself works: a file with a forbidden name in it is found.
        directory = lab.make_lab_dir("tlsbridge-selfcontained.")
        self.addCleanup(shutil.rmtree, directory, True)
        with open(os.path.join(directory, "note.cpp"), "w") as f:
            f.write("// see " + FORBIDDEN[3] + "\n")
        self.assertEqual(forbidden_mentions(directory, ["note.cpp"]),
                         [("note.cpp", 1, FORBIDDEN[3])])

    def test_markdown_links_resolve_inside_the_repository(self):
        files = tracked_files(self.root)
        self.assertTrue("docs/configuration.md" in files, "docs/configuration.md is not tracked")
        self.assertEqual(broken_links(self.root, files), [],
                         "relative markdown links that lead nowhere or out of the repository")

    def test_every_config_key_is_in_the_reference(self):
        keys = loader_keys(self.root)
        self.assertGreater(len(keys), 50, "the loader's keys were not found: has it moved?")
        with open(os.path.join(self.root, "docs", "configuration.md")) as f:
            reference = f.read()
        self.assertEqual(undocumented(keys, reference), [],
                         "keys the loader reads that docs/configuration.md does not describe")
        # The check itself sees a missing key.
        self.assertEqual(undocumented(keys | {"brand_new_key"}, reference), ["brand_new_key"])


if __name__ == "__main__":
    unittest.main()
