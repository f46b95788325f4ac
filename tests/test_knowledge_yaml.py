"""load_kb and export_kb: the knowledge base as reviewable YAML, all or nothing."""

from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from diagnostics.management.commands.load_kb import SEED
from diagnostics.models import FixRecipe, KnowledgeRevision, Symptom


def export(tmp_path, name) -> str:
    path = tmp_path / name
    call_command("export_kb", str(path), stdout=StringIO())
    return path.read_text()


def test_the_shipped_seed_loads_its_symptoms_and_their_recipes(db):
    shipped = yaml.safe_load(SEED.read_text())
    out = StringIO()
    call_command("load_kb", stdout=out)
    assert Symptom.objects.count() == len(shipped["symptoms"]) >= 36
    assert set(FixRecipe.objects.get(key="tcpserver-disable-ident").symptoms.values_list("key", flat=True)) == {
        "ident-lookup-timeout"
    }
    assert KnowledgeRevision.objects.count() == Symptom.objects.count() + FixRecipe.objects.count()
    assert f"{len(shipped['symptoms']) + len(shipped['recipes'])} changed, 0 unchanged" in out.getvalue()


def test_export_load_export_is_byte_identical(db, tmp_path, django_db_blocker):
    call_command("load_kb", stdout=StringIO())
    first = export(tmp_path, "first.yaml")
    FixRecipe.objects.all().delete()
    Symptom.objects.all().delete()
    call_command("load_kb", str(tmp_path / "first.yaml"), stdout=StringIO())
    assert export(tmp_path, "second.yaml") == first


def test_loading_the_same_file_again_changes_nothing(db):
    call_command("load_kb", stdout=StringIO())
    out = StringIO()
    call_command("load_kb", stdout=out)
    assert "0 changed" in out.getvalue()
    assert set(Symptom.objects.values_list("version", flat=True)) == {1}


def test_a_changed_symptom_gets_a_new_version_and_a_revision(db, tmp_path):
    call_command("load_kb", stdout=StringIO())
    document = yaml.safe_load(export(tmp_path, "kb.yaml"))
    document["symptoms"][0]["threshold"] = 0.7
    (tmp_path / "edited.yaml").write_text(yaml.safe_dump(document))
    out = StringIO()
    call_command("load_kb", str(tmp_path / "edited.yaml"), stdout=out)
    key = document["symptoms"][0]["key"]
    assert f"updated symptom {key} (version 2)" in out.getvalue()
    assert KnowledgeRevision.objects.filter(kind="symptom", key=key).count() == 2


def test_a_bad_file_changes_nothing_and_lists_every_error(db, tmp_path):
    call_command("load_kb", stdout=StringIO())
    before = list(Symptom.objects.values_list("key", "version", "threshold"))
    document = yaml.safe_load(SEED.read_text())
    document["symptoms"][0]["threshold"] = 0.9  # a valid change that must not be applied
    document["symptoms"][1]["signature"] = {"any": [{"facts": "syscalls", "where": {"duration": {"ge": 5}}}]}
    document["recipes"][0]["fixes"] = ["no-such-symptom"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(document))
    err = StringIO()
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("load_kb", str(tmp_path / "bad.yaml"), stdout=StringIO(), stderr=err)
    assert 'signature.any[0].where.duration: unknown operator "ge"' in err.getvalue()
    assert 'unknown symptom "no-such-symptom"' in err.getvalue()
    assert list(Symptom.objects.values_list("key", "version", "threshold")) == before


def test_a_file_that_is_not_yaml_is_refused(db, tmp_path):
    (tmp_path / "broken.yaml").write_text("symptoms: [\n")
    with pytest.raises(CommandError):
        call_command("load_kb", str(tmp_path / "broken.yaml"), stdout=StringIO(), stderr=StringIO())
    assert not Symptom.objects.exists()


def test_first_setup_loads_the_seed_once_and_never_overwrites_local_edits(db):
    from io import StringIO

    from django.core.management import call_command

    from diagnostics.models import Symptom

    call_command("load_kb", if_empty=True, stdout=StringIO())
    assert Symptom.objects.filter(key="ident-lookup-timeout").exists()
    Symptom.objects.filter(key="ident-lookup-timeout").update(title="Edited locally")
    out = StringIO()
    call_command("load_kb", if_empty=True, stdout=out)
    assert "already loaded" in out.getvalue()
    assert Symptom.objects.get(key="ident-lookup-timeout").title == "Edited locally"
