from tests.support import Api


async def test_a_registered_device_is_visible_to_admin(app_api: Api, admin_api: Api) -> None:
    answer = await app_api.put("/v1/devices/tok1", {"platform": "ios"})
    assert answer.status == 201
    assert answer.body == {"token": "tok1", "status": "active"}
    shown = await admin_api.get("/v1/devices/tok1")
    assert shown.status == 200
    assert shown.body["platform"] == "ios"
