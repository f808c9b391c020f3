"""Rebuild the vendored Japanese font subsets in kiosk/ui/assets/fonts/ from Debian's fonts-noto-cjk.

    apt-get install fonts-noto-cjk && pip install fonttools && python tools/make_font_subset.py

The subset covers ASCII, the yen sign and common symbols, JIS X 0208's non-kanji rows (kana,
punctuation, full-width forms) and its level-1 and level-2 kanji (6,355), which covers the
names of projects, groups and places a center is likely to configure. Noto Sans CJK is under
the SIL Open Font License 1.1 (kiosk/ui/assets/fonts/OFL.txt), which allows subsetting and
redistribution; the subset keeps the reserved-name-free family name "Noto Sans CJK JP".
"""

from __future__ import annotations

import sys
from pathlib import Path

from fontTools.subset import Options, Subsetter
from fontTools.ttLib import TTCollection

SRC = Path("/usr/share/fonts/opentype/noto")
OUT = Path(__file__).resolve().parents[1] / "kiosk" / "ui" / "assets" / "fonts"


def jis_chars() -> set[str]:
    chars: set[str] = set()
    for row in list(range(1, 9)) + list(range(16, 85)):  # symbols/kana rows, then kanji levels 1-2
        for col in range(1, 95):
            try:
                chars.add(bytes([0xA0 + row, 0xA0 + col]).decode("euc_jp"))
            except UnicodeDecodeError:
                pass
    return chars


def charset() -> str:
    chars = {chr(c) for c in range(0x20, 0x7F)}
    chars |= set("¥°±×÷…‥—–‐・「」『』【】〒〜々〆〇ヶヵ№℡㈱円")
    chars |= {chr(c) for c in range(0xFF01, 0xFF5F)}  # full-width ASCII
    chars |= ({chr(c) for c in range(0x3041, 0x3097)} | {chr(c) for c in range(0x30A1, 0x30FB)}
              | {"ー", "ゝ", "ゞ", "ヽ", "ヾ"})
    chars |= jis_chars()
    return "".join(sorted(chars))


def main() -> int:
    text = charset()
    OUT.mkdir(parents=True, exist_ok=True)
    for weight in ("Regular", "Bold"):
        coll = TTCollection(str(SRC / f"NotoSansCJK-{weight}.ttc"))
        font = next(f for f in coll.fonts
                    if f["name"].getDebugName(4) == f"Noto Sans CJK JP{' Bold' if weight == 'Bold' else ''}")
        opts = Options()
        opts.layout_features = ["kern", "palt", "vert"]
        opts.name_IDs = ["*"]
        opts.notdef_outline = True
        sub = Subsetter(opts)
        sub.populate(text=text)
        sub.subset(font)
        out = OUT / f"NotoSansJP-{weight}-subset.otf"
        font.save(str(out))
        print(f"{out} {out.stat().st_size // 1024} KiB, {len(text)} characters")
    return 0


if __name__ == "__main__":
    sys.exit(main())
