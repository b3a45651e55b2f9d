module example.com/shop/integration

go 1.26.0
