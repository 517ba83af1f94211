from ninja import Router

router = Router(tags=["treatment sessions"])
