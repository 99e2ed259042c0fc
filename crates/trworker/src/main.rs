mod config;

fn main() {
    println!("trworker: under construction");
}
