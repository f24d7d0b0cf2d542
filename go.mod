module perfledger

go 1.26.8
