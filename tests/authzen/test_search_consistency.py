"""Property: on instance-defined types, each search returns exactly the entities an evaluation allows
(searches read the database, evaluations the per-process index; both must agree), with the request's
properties laid over stored ones."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authzen import services
from tests.factories import ProfileFactory

pytestmark = pytest.mark.django_db
BASE = "/authzen/acme/access/v1"
OBJECTS = {"r1": {"status": "active", "level": 1}, "r2": {"status": "archived", "level": 2},
           "r3": {"status": "active", "level": 3}, "r4": {}}
ACTIONS = ["read", "write", "delete", "share"]


@pytest.fixture
def world(instance):
    names = ["alice", "bob", "carol"]
    people = {name: ProfileFactory(instance=instance, external_id=name) for name in names}
    rtype = services.resource_type_create(instance=instance, name="doc", actions=ACTIONS)
    for object_id, props in OBJECTS.items():
        services.resource_object_upsert(rtype=rtype, object_id=object_id, properties=props)
    services.subject_properties_set(instance=instance, user_id=people["bob"].user_id, properties={"clearance": 2})
    alice, bob = str(people["alice"].user_id), str(people["bob"].user_id)
    for subject, action, rid, condition in [
        ("*", "read", "*", 'has(resource.properties.status) && resource.properties.status == "active"'),
        (alice, "read", "r2", ""),
        (alice, "write", "*", "!has(resource.properties.status) || resource.properties.status != \"archived\""),
        ("*", "write", "*", "has(subject.properties.clearance) && has(resource.properties.level) "
                            "&& subject.properties.clearance >= resource.properties.level"),
        (bob, "delete", "r9", ""),  # names an object nobody registered
        ("*", "share", "*", 'has(context.channel) && context.channel == "internal"'),
    ]:
        services.policy_create(instance=instance, subject=subject, rtype=rtype, action=action, resource_id=rid,
                               condition=condition)
    return names


def _decide(pep, subject, action, rid, subject_props, resource_props, context):
    return pep.post(f"{BASE}/evaluation", {
        "subject": {"type": "user", "id": subject, "properties": subject_props},
        "action": {"name": action}, "resource": {"type": "doc", "id": rid, "properties": resource_props},
        "context": context}, format="json").json()["decision"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_searches_return_exactly_what_evaluations_allow(world, pep, data):
    subject = data.draw(st.sampled_from(world + ["nobody"]), label="subject")
    action = data.draw(st.sampled_from(ACTIONS), label="action")
    rid = data.draw(st.sampled_from([*OBJECTS, "r9"]), label="resource")
    subject_props = data.draw(st.sampled_from([{}, {"clearance": 0}, {"clearance": 3}]), label="subject props")
    resource_props = data.draw(st.sampled_from([{}, {"status": "archived"}, {"level": 0}]), label="resource props")
    context = data.draw(st.sampled_from([{}, {"channel": "internal"}]), label="context")

    resources = pep.post(f"{BASE}/search/resource", {
        "subject": {"type": "user", "id": subject, "properties": subject_props}, "action": {"name": action},
        "resource": {"type": "doc", "properties": resource_props}, "context": context}, format="json").json()
    actions = pep.post(f"{BASE}/search/action", {
        "subject": {"type": "user", "id": subject, "properties": subject_props},
        "resource": {"type": "doc", "id": rid, "properties": resource_props}, "context": context},
        format="json").json()
    subjects = pep.post(f"{BASE}/search/subject", {
        "subject": {"type": "user", "properties": subject_props}, "action": {"name": action},
        "resource": {"type": "doc", "id": rid, "properties": resource_props}, "context": context},
        format="json").json()

    assert {r["id"] for r in resources["results"]} == {
        o for o in [*OBJECTS, "r9"] if _decide(pep, subject, action, o, subject_props, resource_props, context)}
    assert {a["name"] for a in actions["results"]} == {
        a for a in ACTIONS if _decide(pep, subject, a, rid, subject_props, resource_props, context)}
    assert {s["id"] for s in subjects["results"]} == {
        s for s in world if _decide(pep, s, action, rid, subject_props, resource_props, context)}
