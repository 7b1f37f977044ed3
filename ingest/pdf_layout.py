"""Page layout: pdfminer.six characters → lines of text in reading order, and page 1's title.

What a reader sees on one visual line stays on one line of text:

- characters → words: characters drawn one after the other on a baseline form a run, cut into words at
  spaces and at gaps wider than the run's letter spacing (letter-spaced headings stay whole); glyphs
  drawn twice (« fake bold ») count once; sideways text (chart axes) is kept apart, on one line;
- words → visual lines (superscripts and subscripts attached, letter-spaced words rejoined) →
  segments, runs of words without a wide gap (a justified line's wide spacing is not a gap);
- a region of the page is cut recursively: at a vertical gutter when a side holds flowing text (a
  two-column page reads column 1, then column 2), else at its widest horizontal gap;
- what cannot be cut further is a row of a table or of an infographic: the segments sharing the row
  are written left to right on one line, cells separated by « | » (« Elec ind | 2,69 »);
- the title is the biggest text of page 1's upper part (:func:`first_heading`).

Only the standard library is imported here (pdfminer's layout classes lazily), so that the PDF child
process (:mod:`ingest.pdf_worker`) stays light.
"""

from __future__ import annotations

import itertools
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

CELL_SEPARATOR = " | "
# Above this many words a page (a map, a dense chart) is written line by line without layout analysis.
_MAX_LAYOUT_WORDS = 4000

# --- geometry ----------------------------------------------------------------------------------


@dataclass
class Word:
    text: str
    x0: float
    x1: float
    top: float
    bottom: float
    size: float
    glued: bool = False  # a superscript or subscript written right after the previous word


@dataclass
class Segment:
    """Words of one visual line with no wide gap between them."""

    words: list[Word] = field(default_factory=list)

    @property
    def x0(self) -> float:
        return min(w.x0 for w in self.words)

    @property
    def x1(self) -> float:
        return max(w.x1 for w in self.words)

    @property
    def _body(self) -> list[Word]:
        # Superscripts do not make a line taller.
        return [w for w in self.words if not w.glued] or self.words

    @property
    def top(self) -> float:
        return min(w.top for w in self._body)

    @property
    def bottom(self) -> float:
        return max(w.bottom for w in self._body)

    @property
    def size(self) -> float:
        return max(w.size for w in self.words)

    @property
    def height(self) -> float:
        return max(self.bottom - self.top, 0.1)

    @property
    def text(self) -> str:
        parts: list[str] = []
        for w in self.words:
            if parts and not w.glued:
                parts.append(" ")
            parts.append(w.text)
        return "".join(parts)


# What opens a list item or a note, kept with the text that follows it (« • Le kit… », « 2 Dans les… »).
_BULLET = re.compile(r"^(?:[•◦▪▫●○■□►▶▸➢➤✓✔✗❖◆◇\uf0a7\uf0b7\uf06e\-–—*·o]|\d{1,2}[.)/]?|[a-zA-Z][.)])$")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _chars(layout: Any) -> list[Any]:
    """pdfminer's characters of a page, those inside forms (figures) included, in drawing order."""
    from pdfminer.layout import LTChar, LTContainer

    found: list[Any] = []
    stack = [iter(layout)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, LTChar):
                found.append(item)
            elif isinstance(item, LTContainer):
                stack.append(iter(item))
                break
        else:
            stack.pop()
    return found


def words_of_page(layout: Any) -> tuple[list[Word], str]:
    """Words of a pdfminer page (upright text), and its sideways text on one line.

    Characters are read in drawing order and grouped into runs, each character sitting right after the
    previous one on its baseline; :func:`_run_words` cuts a run into words. Two texts drawn over each other
    thus never interleave, and the padding spaces some producers draw under a right-aligned number do not
    cut it in two. Characters or words drawn twice at the same place (« fake bold ») count once. Text drawn
    sideways (chart axes, margin notes) is returned apart, to be kept after the page so that no fact is lost.
    """
    height = float(layout.y1)
    runs: list[list[Any]] = []
    sideways: list[str] = []
    previous: tuple[float, float] | None = None
    for ch in _chars(layout):
        if not ch.upright:
            centre = ((ch.x0 + ch.x1) / 2, (ch.y0 + ch.y1) / 2)
            if previous is not None and abs(centre[0] - previous[0]) + abs(centre[1] - previous[1]) > 1.6 * ch.size:
                sideways.append(" ")
            sideways.append(ch.get_text())
            previous = centre
            continue
        if runs and runs[-1]:
            last = runs[-1][-1]
            size = min(float(ch.size), float(last.size)) or 1.0
            if ch.get_text() == last.get_text() and abs(ch.x0 - last.x0) <= 1 and abs(ch.y0 - last.y0) <= 1:
                continue  # the same glyph drawn twice
            if abs(ch.y0 - last.y0) <= 0.2 * size + 0.3 and -0.5 * size <= ch.x0 - last.x1 <= 1.0 * size:
                runs[-1].append(ch)
                continue
        runs.append([ch])
    words: list[Word] = []
    for run in runs:
        words.extend(_run_words(run, height))
    seen: set[tuple[str, int, int]] = set()
    unique: list[Word] = []
    for w in words:
        key = (w.text, round(w.x0), round(w.bottom))
        if key in seen:
            continue
        seen.add(key)
        unique.append(w)
    return unique, " ".join("".join(sideways).split())


def _run_words(run: list[Any], height: float) -> list[Word]:
    """Split a run of characters drawn one after the other into words.

    A word ends at a space character or at a gap wider than the run's usual gap between letters plus
    0.15 em, and at least a quarter of an em (at most 3 points): letter-spaced text (« L ’ A B O N N É »
    drawn with wide tracking) stays in words, « Des » and « simulateurs » drawn apart without a space do not.
    """
    glyph_gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(run) if a.get_text().strip() and b.get_text().strip()]
    size = _median([float(c.size) for c in run]) or 1.0
    limit = max(max(1.0, min(3.0, 0.25 * size)), _median(glyph_gaps) + 0.15 * size)
    words: list[Word] = []
    current: list[Any] = []

    def close() -> None:
        if current:
            words.append(Word("".join(c.get_text() for c in current), float(current[0].x0),
                              max(float(c.x1) for c in current), height - max(float(c.y1) for c in current),
                              height - min(float(c.y0) for c in current),
                              statistics.median(float(c.size) for c in current)))
            current.clear()

    for ch in run:
        if not ch.get_text().strip():
            close()
            continue
        if current and ch.x0 - current[-1].x1 > limit:
            close()
        current.append(ch)
    close()
    return words


def _visual_lines(words: list[Word]) -> list[list[Word]]:
    """Words sharing a baseline, left to right; small raised or lowered words glued to their line."""
    ordered = sorted(words, key=lambda w: (round(w.bottom, 1), w.x0))
    lines: list[list[Word]] = []
    for word in ordered:
        for line in reversed(lines[-6:]):
            ref = line[0]
            if abs(word.bottom - ref.bottom) <= 0.25 * min(word.size, ref.size) + 0.5:
                line.append(word)
                break
        else:
            lines.append([word])
    # Superscripts (« m² », note calls « CGDD⁶ ») and subscripts: smaller words whose middle lies inside
    # a line of bigger words and that touch one of its words.
    main = sorted(lines, key=lambda ln: -_median([w.size for w in ln]))
    kept: list[list[Word]] = []
    for line in main:
        size = _median([w.size for w in line])
        host = None
        if all(len(w.text) <= 4 for w in line):
            for other in kept:
                other_size = _median([w.size for w in other])
                if size > 0.8 * other_size:
                    continue
                top = min(w.top for w in other)
                bottom = max(w.bottom for w in other)
                if all(top <= (w.top + w.bottom) / 2 <= bottom and _touches(w, other, other_size) for w in line):
                    host = other
                    break
        if host is None:
            kept.append(line)
            continue
        for w in line:
            before = [o for o in host if -1.0 <= w.x0 - o.x1 <= 0.25 * o.size]
            # « m² », « kWh/m² », « CO₂ », « 1er » are one word; a note call « CGDD⁶ » is written « CGDD 6 ».
            raised = (w.top + w.bottom) / 2 < (min(o.top for o in host) + max(o.bottom for o in host)) / 2
            note_call = raised and w.text.isdigit() and any(_ends_with_word(o.text) for o in before)
            w.glued = bool(before) and not note_call
            host.append(w)
    for line in kept:
        line.sort(key=lambda w: w.x0)
    return sorted(kept, key=lambda ln: (min(w.top for w in ln), min(w.x0 for w in ln)))


def _ends_with_word(text: str) -> bool:
    """« CEEB », « logements » end with a word; « kWh/m », « m », « CO » end with a unit."""
    letters = re.search(r"[^\W\d_]+$", text)
    return letters is not None and len(letters.group(0)) >= 3


def _touches(word: Word, line: list[Word], size: float) -> bool:
    return any(-1.0 <= word.x0 - o.x1 <= 0.5 * size or -1.0 <= o.x0 - word.x1 <= 0.5 * size for o in line)


def _rejoin_letter_spacing(line: list[Word]) -> list[Word]:
    """« L ’ A B O N N E » drawn with wide letter spacing → « L’ABONNE »; word breaks kept at the wider gaps."""
    out: list[Word] = []
    i = 0
    while i < len(line):
        j = i
        while j < len(line) and len(line[j].text) <= 3 and not line[j].glued and not line[j].text.isdigit():
            j += 1
        run = line[i:j]
        singles = sum(1 for w in run if len(w.text) == 1)
        if len(run) >= 4 and singles >= 0.6 * len(run):
            gaps = [b.x0 - a.x1 for a, b in itertools.pairwise(run)]
            small, large = min(gaps), max(gaps)
            limit = (small + large) / 2 if large > 1.6 * small + 0.5 else large + 1
            merged = [run[0]]
            for gap, w in zip(gaps, run[1:], strict=True):
                if gap <= limit and gap < 1.0 * w.size:
                    last = merged[-1]
                    merged[-1] = Word(last.text + w.text, last.x0, w.x1, min(last.top, w.top),
                                      max(last.bottom, w.bottom), max(last.size, w.size))
                else:
                    merged.append(w)
            out.extend(merged)
            i = j
        else:
            out.append(line[i])
            i += 1
    return out


def _segments(line: list[Word], above: list[Word] | None = None, below: list[Word] | None = None) -> list[Segment]:
    """Split a visual line at gaps wider than about one em (cells of a table, columns, label and value).

    Not inside a paragraph: a gap with text all across it on the lines just above and below (or on the
    only one of them) is the stretched word spacing of a justified line.
    """
    neighbours = [n for n in (above, below) if n]
    segments = [Segment([line[0]])]
    prev = line[0]
    for word in line[1:]:
        gap = word.x0 - prev.x1
        size = min(word.size, prev.size)
        opener = (len(segments[-1].words) == 1 and _BULLET.match(segments[-1].words[0].text) is not None
                  and word.text[:1].isalpha())
        wide = not word.glued and gap > 1.0 * size and not (opener and gap < 4 * size)
        # A gutter or a table shows white across the next line too; a paragraph shows only word spacing.
        hole = max(0.6 * size, min(0.8 * gap, 1.0 * size))
        if wide and neighbours and all(_covers(n, prev.x1, word.x0, hole) for n in neighbours):
            wide = False
        if wide:
            segments.append(Segment([word]))
        else:
            segments[-1].words.append(word)
        prev = word
    return segments


def _covers(line: list[Word], a: float, b: float, max_hole: float) -> bool:
    """The line's words run across [a, b] with no hole wider than ``max_hole``."""
    inside = sorted((w.x0, w.x1) for w in line if w.x1 > a and w.x0 < b)
    if not inside or inside[0][0] > a + max_hole:
        return False
    reach = inside[0][1]
    for x0, x1 in inside[1:]:
        if x0 - reach > max_hole:
            return False
        reach = max(reach, x1)
    return reach >= b - max_hole


def page_segments(words: list[Word]) -> list[Segment]:
    lines = [_rejoin_letter_spacing(line) for line in _visual_lines(words)]
    tops = [min(w.top for w in line) for line in lines]
    bottoms = [max(w.bottom for w in line) for line in lines]
    sizes = [_median([w.size for w in line]) for line in lines]
    segments: list[Segment] = []
    for i, line in enumerate(lines):
        reach = 1.0 * sizes[i]
        above = next((lines[j] for j in range(i - 1, max(i - 4, -1), -1)
                      if 0 <= tops[i] - bottoms[j] <= reach and abs(sizes[j] - sizes[i]) <= 0.2 * sizes[i]), None)
        below = next((lines[j] for j in range(i + 1, min(i + 4, len(lines)))
                      if 0 <= tops[j] - bottoms[i] <= reach and abs(sizes[j] - sizes[i]) <= 0.2 * sizes[i]), None)
        segments.extend(_segments(line, above, below))
    return segments


# --- reading order -----------------------------------------------------------------------------


def _is_prose(segments: list[Segment]) -> bool:
    """Flowing text: several close lines from one left edge, most a sentence's worth of words, and lines
    that run on (the next starts in lower case) or fill the column — not a column of table labels."""
    if len(segments) < 3:
        return False
    ordered = sorted(segments, key=lambda s: s.top)
    left = min(s.x0 for s in ordered)
    right = max(s.x1 for s in ordered)
    size = _median([s.size for s in ordered])
    aligned = sum(1 for s in ordered if s.x0 - left <= 1.5 * size)
    words = [len(s.text.split()) for s in ordered]
    wordy = sum(1 for n in words if n >= 4)
    spacing = _median([b.top - a.bottom for a, b in itertools.pairwise(ordered)])
    if aligned < 0.6 * len(ordered) or wordy < 0.5 * len(ordered) or sum(words) < 4 * len(words) \
            or spacing > 1.0 * size:
        return False  # ragged, short, or lines set far apart like the labels of a chart
    runs_on = sum(1 for s in ordered[1:] if not s.text[:1].isupper())
    full = sum(1 for s in ordered if s.x1 - s.x0 >= 0.7 * (right - left))
    return runs_on >= 0.3 * (len(ordered) - 1) or full >= 0.7 * len(ordered)


def _gutters(segments: list[Segment], min_width: float) -> list[float]:
    spans = sorted((s.x0, s.x1) for s in segments)
    cuts: list[float] = []
    end = spans[0][1]
    for x0, x1 in spans[1:]:
        if x0 - end >= min_width:
            cuts.append((end + x0) / 2)
        end = max(end, x1)
    return cuts


def _columns(segments: list[Segment], cuts: list[float]) -> list[list[Segment]]:
    cols: list[list[Segment]] = [[] for _ in range(len(cuts) + 1)]
    for s in segments:
        cols[sum(1 for c in cuts if s.x0 > c)].append(s)
    return [c for c in cols if c]


def _horizontal_gaps(segments: list[Segment]) -> list[tuple[float, float]]:
    """(height, y) of every band of white space that crosses the whole region."""
    spans = sorted((s.top, s.bottom) for s in segments)
    gaps: list[tuple[float, float]] = []
    end = spans[0][1]
    for top, bottom in spans[1:]:
        if top - end >= -0.5:
            gaps.append((top - end, (end + top) / 2))
        end = max(end, bottom)
    return gaps


def _arrange(segments: list[Segment], depth: int = 0) -> list[str]:
    if not segments:
        return []
    if len(segments) == 1:
        return [segments[0].text]
    if depth > 200:
        return _rows(segments)
    size = _median([s.size for s in segments])
    cuts = _gutters(segments, 0.9 * size)
    columns = _columns(segments, cuts) if cuts else []
    if columns and any(_is_prose(c) for c in columns):
        # Flowing text beside anything: each side is read on its own. Neighbouring columns that are not
        # flowing text stay together (a table beside a paragraph keeps its rows).
        groups: list[list[Segment]] = []
        for col in columns:
            if groups and not _is_prose(col) and not _is_prose(groups[-1]):
                groups[-1] = groups[-1] + col
            else:
                groups.append(col)
        if len(groups) > 1:
            return [line for group in groups for line in _arrange(group, depth + 1)]
    gaps = _horizontal_gaps(segments)
    if columns:
        # Cells of a table or an infographic: cut between rows (white space taller than line spacing),
        # never between the lines of one row.
        gaps = [g for g in gaps if g[0] > 0.6 * size]
    if gaps:
        widest = max(h for h, _ in gaps)
        ys = [y for h, y in gaps if h >= 0.8 * widest]
        bands: list[list[Segment]] = [[] for _ in range(len(ys) + 1)]
        for s in segments:
            bands[sum(1 for y in ys if (s.top + s.bottom) / 2 > y)].append(s)
        bands = [b for b in bands if b]
        if len(bands) > 1:
            return [line for band in bands for line in _arrange(band, depth + 1)]
    return _rows(segments)


def _overlap(a: Segment, b: Segment) -> float:
    return min(a.bottom, b.bottom) - max(a.top, b.top)


def _cell_blocks(segments: list[Segment]) -> list[Segment]:
    """Lines of one table cell, one under the other, joined into one block.

    A line joins the line just above it in the same column when it is close (less than about half a line
    apart) and goes on from it (« Nombre de » / « logements de la » / « copropriété (B) »); « RT2005 » under
    « Social moyen » starts a new cell.
    """
    ordered = sorted(segments, key=lambda s: s.top)
    blocks: list[Segment] = []
    for seg in ordered:
        host = None
        for block in reversed(blocks):
            if block.x1 <= seg.x0 or seg.x1 <= block.x0:
                continue  # another column
            gap = seg.top - block.bottom
            if -0.2 * seg.size <= gap <= 0.6 * min(seg.size, block.size) and _continues(seg.text):
                host = block
            break
        if host is None:
            blocks.append(Segment(list(seg.words)))
        else:
            host.words.extend(seg.words)
    return blocks


def _rows(segments: list[Segment]) -> list[str]:
    """Cells that share a visual row, written left to right on one line, joined by « | »."""
    blocks = _cell_blocks(segments) if len(segments) > 1 else segments
    n = len(blocks)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    order = sorted(range(n), key=lambda i: blocks[i].top)
    for a_pos, i in enumerate(order):
        for j in order[a_pos + 1:]:
            a, b = blocks[i], blocks[j]
            if b.top >= a.bottom:
                break
            if _overlap(a, b) >= 0.4 * min(a.height, b.height):
                parent[find(i)] = find(j)
    groups: dict[int, list[Segment]] = {}
    for i in order:
        groups.setdefault(find(i), []).append(blocks[i])
    lines: list[str] = []
    for row in sorted(groups.values(), key=lambda g: min(s.top for s in g)):
        cells: list[list[Segment]] = []
        for s in sorted(row, key=lambda s: s.x0):
            if cells and s.x0 < max(c.x1 for c in cells[-1]) - 1:
                cells[-1].append(s)
            else:
                cells.append([s])
        texts = [" ".join(s.text for s in sorted(cell, key=lambda s: s.top)) for cell in cells]
        lines.append(_join_cells(cells, texts))
    return lines


def _continues(text: str) -> bool:
    """The text goes on from the line above: it starts in lower case or with a bracket."""
    text = text.lstrip()
    return bool(text) and (text[0].islower() or text[0] in "([")


def _join_cells(cells: list[list[Segment]], texts: list[str]) -> str:
    if len(texts) == 1:
        return texts[0]
    single_line = all(len(c) == 1 for c in cells)
    if single_line and len(texts) >= 3 and not any(ch.isdigit() for t in texts for ch in t):
        gaps = [b[0].x0 - a[-1].x1 for a, b in itertools.pairwise(cells)]
        size = _median([s.size for c in cells for s in c])
        if max(gaps) <= 1.5 * min(gaps) and max(gaps) <= 3.0 * size:
            return " ".join(texts)  # a justified line whose word spacing exceeded one em
    return CELL_SEPARATOR.join(texts)


def layout_lines(words: list[Word]) -> list[str]:
    """The page's words as lines of text in reading order (see the module docstring)."""
    if not words:
        return []
    segments = page_segments(words)
    if len(words) > _MAX_LAYOUT_WORDS:
        return [s.text for s in sorted(segments, key=lambda s: (s.top, s.x0))]
    return _arrange(segments)


def first_heading(words: list[Word]) -> str:
    """The biggest text of a page's upper part (its title), as one line; "" when nothing stands out.

    The lines drawn in the biggest size (within 5 %) that follow each other make the heading.
    """
    lines = _visual_lines(words)
    if not lines:
        return ""
    sizes = [_median([w.size for w in ln]) for ln in lines]
    page_bottom = max(w.bottom for ln in lines for w in ln)
    candidates = [
        size for ln, size in zip(lines, sizes, strict=True)
        if min(w.top for w in ln) <= 0.6 * page_bottom and sum(ch.isalpha() for w in ln for ch in w.text) >= 3
    ]
    if not candidates or max(candidates) < 1.15 * min(sizes):
        return ""
    biggest = max(candidates)
    picked: list[list[Word]] = []
    for ln, size in sorted(zip(lines, sizes, strict=True), key=lambda pair: min(w.top for w in pair[0])):
        if size >= 0.95 * biggest:
            if picked and min(w.top for w in ln) - max(w.bottom for w in picked[-1]) > 1.5 * biggest:
                break  # another big text further down the page
            picked.append(ln)
        elif picked:
            break
    text = " ".join(Segment(_rejoin_letter_spacing(ln)).text for ln in picked)
    return re.sub(r"\s+", " ", text).strip()
