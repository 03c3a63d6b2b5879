def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


def test_world_grids_listed_for_county_admin(client, as_user, world):
    r = client.get("/api/v1/grids", headers=as_user("county"))
    assert r.status_code == 200, r.text
    codes = sorted(i["code"] for i in r.json()["items"])
    assert codes == sorted(world.grids)
