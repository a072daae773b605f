"""Sample report pages: inlined images, escaped text, the index of pages."""

from PIL import Image

from vlrl.reports import PromptView, SampleView, render_page, write_sample_report


def test_page_inlines_images_and_escapes_model_text(tmp_path):
    import io

    buf = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buf, format="PNG")
    samples = [
        SampleView(
            "```python\nplt.title('<script>alert(1)</script>')\n```",
            buf.getvalue(),
            None,
            0.75,
            {"exec": 1.0, "msrl_text/title": 0.5},
            "title should read 'Sales'",
        ),
        SampleView("no code", None, "syntax: no python code block found", 0.0),
    ]
    html_text = render_page("run: samples at step 3", [PromptView("chart-7", Image.new("RGB", (30, 20)), samples)])
    assert html_text.count("data:image/png;base64,") == 2  # input chart + one rendering
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text
    assert "reward 0.750" in html_text and "msrl_text/title" in html_text and "0.500" in html_text
    assert "no rendering: syntax: no python code block found" in html_text
    page = write_sample_report(tmp_path / "samples", 3, [PromptView("chart-7", Image.new("RGB", (30, 20)), samples)])
    write_sample_report(tmp_path / "samples", 10, [])
    assert page.name == "step-000003.html"
    index = (tmp_path / "samples" / "index.html").read_text()
    assert index.index("step-000003") < index.index("step-000010")
