# Small files on flash (littlefs on the boards, the --state folder on the host), written so that a
# power cut at any instant leaves either the old or the new content: write a temporary file, then
# rename it over the old one (rename is atomic on littlefs and POSIX).
import json
import os

dir = ""  # folder for our files; "" = the current directory (the flash root on a board)


def path(name):
    return dir + "/" + name if dir else name


def save(name, obj):
    p = path(name)
    tmp = p + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.rename(tmp, p)


def load(name, log=None):
    """The object saved under name, or None if absent; a corrupt file is logged and ignored (it
    is renamed *.bad so the next save cannot be confused with it, and so it can be inspected)."""
    p = path(name)
    try:
        with open(p) as f:
            return json.load(f)
    except OSError:
        return None
    except Exception as e:  # ValueError from a torn or bit-flipped file
        if log:
            log("store: %s is corrupt (%r); using defaults" % (name, e))
        try:
            os.rename(p, p + ".bad")
        except OSError:
            pass
        return None


def remove(name):
    try:
        os.remove(path(name))
    except OSError:
        pass
