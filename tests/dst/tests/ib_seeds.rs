//! A few seeds of the IB simulation in `make test` (the soak: `tradeguard-dst --ib --seeds N`).
//! Each runs the production guard over the real IB adapter against the fake TWS on loopback,
//! in real time, and checks the invariants of `tradeguard_dst::ib`.

macro_rules! ib_seeds {
    ($($name:ident => $seed:expr),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                match tradeguard_dst::ib::run_ib_seed($seed) {
                    Ok(r) => println!("{r:?}"),
                    Err(f) => panic!("{f}"),
                }
            }
        )*
    };
}

ib_seeds!(
    ib_seed_0 => 0,
    ib_seed_1 => 1,
    ib_seed_2 => 2,
    ib_seed_3 => 3,
    ib_seed_4 => 4,
    ib_seed_5 => 5,
);
