"""The framework extras stay optional: the base package never imports them."""

import subprocess
import sys
import textwrap


def test_retrieval_imports_no_framework(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import hippo, hippo.integrations, hippo.integrations.common
        from hippo.testing import make_engine
        hits = make_engine({str(tmp_path / "idx")!r}).retrieve("Where was Alice Smith born?", k=2).hits
        assert len(hits) == 2
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("langchain_core", "langchain", "llama_index"))
        print(loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    probe = subprocess.run(
        [sys.executable, "-c", "import sys, hippo.integrations.langchain; print('langchain_core' in sys.modules)"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert probe.strip() == "True"  # the probe can see an import when there is one
