"""The notebook helpers of lrtheory.verify.display: what each draws or typesets, read back from the
matplotlib objects and the IPython ``Math`` text (expected values written by hand)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import sympy as sp  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402
from matplotlib.ticker import NullFormatter  # noqa: E402

from lrtheory.verify import display  # noqa: E402

#: the default band colours of shade_phases, as its signature gives them (pale blue, orange, red, grey)
DEFAULT_COLORS = ("#e8f1fb", "#fdf0e2", "#fbe5e5", "#eeeeee")


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_show_equation_typesets_lhs_equals_expr():
    x = sp.Symbol("x")
    assert display.show_equation("f", x ** 2 / 2).data == r"f = \frac{x^{2}}{2}"  # a sympy expression: latex
    assert display.show_equation("g", r"\sqrt{\eta}").data == r"g = \sqrt{\eta}"  # a LaTeX string: as is
    assert display.show_equation("E", sp.Integer(3), label="2.1").data == r"E = 3\tag{2.1}"
    assert display.show_equation("E", "3", label="").data == "E = 3"  # no label, no tag
    from IPython.display import Math

    assert isinstance(display.show_equation("f", "1"), Math)


def test_shade_phases_bands_and_labels_on_a_linear_axis(ax):
    ax.set_xlim(0, 10)
    ax.set_ylim(-3, 40)  # data y differs from the axes fraction: the labels' y is the latter
    edges = [0.0, 2.0, 3.0, 5.0, 8.0, 10.0]
    labels = ["a", "b", "c", "d", "e"]  # five bands: the four default colours, then the first again
    display.shade_phases(ax, edges, labels)
    bands = list(ax.patches)
    assert len(bands) == 5 and len(ax.texts) == 5
    for i, (band, text) in enumerate(zip(bands, ax.texts)):
        lo, hi = edges[i], edges[i + 1]
        (x0, _), (x1, _) = band.get_path().get_extents(band.get_patch_transform()).get_points()
        assert (x0, x1) == pytest.approx((lo, hi))
        assert band.get_facecolor() == pytest.approx(to_rgba(DEFAULT_COLORS[i % 4], 0.8))
        assert band.get_linewidth() == 0 and band.get_zorder() == 0  # no edge, under the data
        assert text.get_text() == labels[i]
        assert text.get_position() == pytest.approx(((lo + hi) / 2, 0.98))  # the middle, near the top
        assert (text.get_ha(), text.get_va(), text.get_fontsize()) == ("center", "top", 9)
        # x in data units, y as a fraction of the axes' height
        want = (ax.transData.transform((((lo + hi) / 2), 0))[0], ax.transAxes.transform((0, 0.98))[1])
        assert tuple(text.get_transform().transform(text.get_position())) == pytest.approx(want)


def test_shade_phases_on_a_log_axis_labels_at_the_geometric_middle(ax):
    ax.set_xscale("log")
    ax.set_xlim(1, 1e4)
    display.shade_phases(ax, [1.0, 100.0, 1e4], ["lazy", "catapult"], colors=("red", "blue"), alpha=0.5)
    assert [t.get_position()[0] for t in ax.texts] == pytest.approx([10.0, 1000.0])
    assert [p.get_facecolor() for p in ax.patches] == [to_rgba("red", 0.5), to_rgba("blue", 0.5)]


def test_shade_phases_needs_one_edge_more_than_labels(ax):
    with pytest.raises(ValueError, match=r"^edges: expected 3 edges for 2 labels, got 2$"):
        display.shade_phases(ax, [1.0, 2.0], ["a", "b"])
    assert len(ax.patches) == 0 and len(ax.texts) == 0  # checked before anything is drawn


def test_loglog_sets_both_scales_and_labels(ax):
    display.loglog(ax, "width $n$", r"$\eta^*$")
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("width $n$", r"$\eta^*$")


def test_plain_log_ticks_on_x_by_default_and_on_y(ax):
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(8, 128)
    y_major_before = type(ax.yaxis.get_major_formatter())
    display.plain_log_ticks(ax, ticks=[16, 64])
    assert list(ax.get_xticks()) == [16, 64]
    fmt = ax.xaxis.get_major_formatter()
    assert [fmt(v, 0) for v in (16.0, 64.0, 0.5, 1e-5, 2.5e6)] == ["16", "64", "0.5", "1e-05", "2.5e+06"]
    assert isinstance(ax.xaxis.get_minor_formatter(), NullFormatter)
    assert type(ax.yaxis.get_major_formatter()) is y_major_before  # the other axis untouched
    assert not isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
    ticks_before = list(ax.get_yticks())
    display.plain_log_ticks(ax, "y")  # no ticks given: the axis' own ticks stay
    assert list(ax.get_yticks()) == ticks_before
    assert ax.yaxis.get_major_formatter()(0.25, 0) == "0.25"
    assert isinstance(ax.yaxis.get_minor_formatter(), NullFormatter)
    assert list(ax.get_xticks()) == [16, 64]


def test_plain_log_ticks_rejects_another_axis(ax):
    with pytest.raises(ValueError, match=r"^axis: expected 'x' or 'y', got 'z'$"):
        display.plain_log_ticks(ax, "z")


def test_helpers_are_exported():
    assert display.__all__ == ["show_equation", "shade_phases", "loglog", "plain_log_ticks"]
    assert all(callable(getattr(display, name)) for name in display.__all__)
